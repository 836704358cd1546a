"""Statistics of judge verdicts (SPEC section 4): verdict files, bootstrap CIs, win-rate protocols, paired
comparisons, Bradley-Terry scores and judge agreement. ``from harness import stats`` gives the public API."""

from harness.stats.agreement import cohen_kappa, judge_agreement
from harness.stats.bootstrap import CI_LEVEL, DEFAULT_RESAMPLES, bootstrap_mean_ci, resolution_note
from harness.stats.bradley_terry import bradley_terry, fit_bradley_terry
from harness.stats.paired import DEFAULT_PERMUTATIONS, paired_comparison
from harness.stats.winrates import (CALL_SCORE, DEFAULT_FIT_RESAMPLES, DEFAULT_MAX_PARSE_FAILURE_RATE, PROTOCOLS,
                                    balanced_win_rate, first_position_preference, length_controlled_win_rate,
                                    paper_call, position_consistency, robust, robust_item_scores, sami_paper, win_rates)

__all__ = ["CALL_SCORE", "CI_LEVEL", "DEFAULT_FIT_RESAMPLES", "DEFAULT_MAX_PARSE_FAILURE_RATE", "DEFAULT_PERMUTATIONS",
           "DEFAULT_RESAMPLES", "PROTOCOLS", "balanced_win_rate", "bootstrap_mean_ci", "bradley_terry", "cohen_kappa",
           "first_position_preference", "fit_bradley_terry", "judge_agreement", "length_controlled_win_rate",
           "paired_comparison", "paper_call", "position_consistency", "resolution_note", "robust",
           "robust_item_scores", "sami_paper", "win_rates"]
