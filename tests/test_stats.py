"""Statistics a user relies on: the paper's arithmetic, the robust protocol's handling of ties, parse
failures and resampling units, length control, position bias, paired tests, Bradley-Terry, judge
agreement, and the ``harness stats`` command's exit codes."""

from __future__ import annotations

import csv
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.special

from harness import stats
from harness.cli import main
from harness.core.errors import HarnessError
from harness.core.hashing import derived_seed
from harness.judging.reference_verdicts import read_oai1b_judged
from harness.stats.verdicts import parse_verdicts

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
OAI1B_JUDGED = REFERENCE / "tldr" / "oai1b_judged.csv"
FAST = {"n_resamples": 2000, "fit_resamples": 200}  # library calls; the CLI enforces >= 10,000


def verdicts(*rows: dict) -> list:
    return parse_verdicts(list(rows), "test")


def one_order(winners: list, **extra) -> list:
    """One call per item, item ids 0..n-1."""
    return verdicts(*({"item": i, "winner": w, "order": "candidate_first", **extra} for i, w in enumerate(winners)))


def mixed_scores(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return list(rng.choice(["candidate", "baseline", "tie"], size=n, p=[0.55, 0.35, 0.10]))


# --- sami-paper --------------------------------------------------------------------------------


def test_sami_paper_hand_computed_with_a_parse_failure():
    # 7 wins + 2 ties (0.5 each) + 1 parse failure (0.5) over 10 items: p = 8.5 / 10
    result = stats.sami_paper(one_order(["candidate"] * 7 + ["tie"] * 2 + [None]))
    sem = math.sqrt(0.85 * 0.15 / 10)
    assert result["protocol"] == "sami-paper" and result["n"] == 10
    assert result["win_rate"] == pytest.approx(0.85)
    assert result["sem"] == pytest.approx(sem)
    assert result["ci_low"] == pytest.approx(0.85 - 1.96 * sem)
    assert result["ci_high"] == 1.0  # 0.85 + 0.2213 is clipped
    assert result["tie_rate"] == pytest.approx(0.2) and result["parse_failure_rate"] == pytest.approx(0.1)


def test_sami_paper_hand_computed_without_clipping():
    # 5 wins, 2 ties, 3 losses: p = 0.6, SEM = sqrt(0.6 * 0.4 / 10) = 0.154919, 1.96 SEM = 0.303642
    result = stats.sami_paper(one_order(["candidate"] * 5 + ["tie"] * 2 + ["baseline"] * 3))
    assert result["win_rate"] == pytest.approx(0.6)
    assert result["sem"] == pytest.approx(0.15491933384829668)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((0.6 - 0.30364189, 0.6 + 0.30364189))
    assert result["ci_level"] == 0.95
    assert result["note"] == "10 items resolve about ±31 points at 95%"


def test_sami_paper_uses_the_seeded_order_when_both_are_judged():
    rows = []
    for i in range(40):  # the candidate wins when shown first, loses when shown second
        rows += [{"item": f"q{i}", "order": "candidate_first", "winner": "candidate"},
                 {"item": f"q{i}", "order": "baseline_first", "winner": "baseline"}]
    for seed in (0, 1):
        expected = np.mean([derived_seed(f"q{i}", seed) % 2 == 0 for i in range(40)])
        assert stats.sami_paper(verdicts(*rows), seed=seed)["win_rate"] == pytest.approx(expected)
    assert stats.sami_paper(verdicts(*rows), seed=0)["win_rate"] != stats.sami_paper(verdicts(*rows), seed=1)["win_rate"]


def test_length_balanced_win_rate_hand_example():
    rows = [  # candidate longer: scores 1, 1, 0 -> 2/3; not longer (shorter or equal): 0, 0.5 -> 1/4
        ("candidate", 20, 10), ("candidate", 15, 10), ("baseline", 11, 10), ("baseline", 5, 10), ("tie", 10, 10)]
    result = stats.sami_paper(verdicts(*({"item": i, "winner": w, "candidate_length": c, "baseline_length": b}
                                         for i, (w, c, b) in enumerate(rows))))
    assert result["balanced_win_rate"] == pytest.approx((2 / 3 + 1 / 4) / 2)
    assert result["win_rate"] == pytest.approx(2.5 / 5)
    assert (result["n_candidate_longer"], result["n_candidate_not_longer"]) == (3, 2)
    assert result["mean_candidate_length"] == pytest.approx(61 / 5)


def test_length_balanced_win_rate_is_none_for_an_empty_stratum():
    result = stats.sami_paper(one_order(["candidate", "baseline"], candidate_length=9, baseline_length=3))
    assert result["balanced_win_rate"] is None


# --- robust ------------------------------------------------------------------------------------


def test_robust_excludes_parse_failures_and_never_counts_them_as_ties():
    result = stats.robust(verdicts(
        {"item": "a", "order": "candidate_first", "winner": "candidate"},
        {"item": "a", "order": "baseline_first", "winner": None},
        {"item": "b", "order": "candidate_first", "winner": None},
        {"item": "b", "order": "baseline_first", "winner": None},
        {"item": "c", "order": "candidate_first", "winner": "baseline"},
        {"item": "c", "order": "baseline_first", "winner": "baseline"},
        {"item": "d", "order": "candidate_first", "winner": "tie"},
    ), **FAST)
    # items a = 1 (failure dropped, not 0.75), b left out (not 0.5), c = 0, d = 0.5
    assert result["win_rate"] == pytest.approx(0.5)
    assert (result["n"], result["n_calls"], result["n_parse_failures"], result["n_items_all_failed"]) == (3, 7, 3, 1)
    assert result["parse_failure_rate"] == pytest.approx(3 / 7)
    assert result["tie_rate"] == pytest.approx(1 / 4)  # of the 4 parsed calls
    assert result["parse_failure_exceeded"] is True


def test_robust_item_score_averages_orders_with_ties_as_half():
    result = stats.robust(verdicts(
        {"item": "a", "order": "candidate_first", "winner": "candidate"},
        {"item": "a", "order": "baseline_first", "winner": "tie"},
        {"item": "b", "order": "candidate_first", "winner": "tie"},
        {"item": "b", "order": "baseline_first", "winner": "tie"},
    ), **FAST)
    assert result["win_rate"] == pytest.approx((0.75 + 0.5) / 2)
    assert result["parse_failure_rate"] == 0 and result["parse_failure_exceeded"] is False


def test_bootstrap_defaults_to_at_least_10000_seeded_resamples():
    assert inspect.signature(stats.robust).parameters["n_resamples"].default >= 10_000
    assert inspect.signature(stats.bootstrap_mean_ci).parameters["n_resamples"].default >= 10_000
    data = one_order(mixed_scores(150, seed=3))
    first, again, other = stats.robust(data), stats.robust(data), stats.robust(data, seed=1)
    assert first["n_resamples"] >= 10_000 and first["seed"] == 0 and first["ci_method"] == "BCa"
    assert (first["ci_low"], first["ci_high"]) == (again["ci_low"], again["ci_high"])
    assert (first["ci_low"], first["ci_high"]) != (other["ci_low"], other["ci_high"])
    assert abs(first["ci_low"] - other["ci_low"]) < 0.02 and abs(first["ci_high"] - other["ci_high"]) < 0.02
    assert first["ci_low"] < first["win_rate"] < first["ci_high"]


def test_the_item_is_the_resampling_unit():
    winners = mixed_scores(120, seed=5)
    single = one_order(winners)
    doubled = verdicts(*({"item": i, "order": order, "winner": w} for i, w in enumerate(winners)
                         for order in ("candidate_first", "baseline_first")))
    one, two = stats.robust(single, **FAST), stats.robust(doubled, **FAST)
    assert two["n"] == 120 and two["n_calls"] == 240
    # judging every item twice (consistently) gives the same interval: the calls are not independent
    assert (two["ci_low"], two["ci_high"]) == (one["ci_low"], one["ci_high"])
    # whereas resampling the 240 calls would shrink it by about 1/sqrt(2)
    scores = [stats.CALL_SCORE[w] for w in winners]
    low, high, _ = stats.bootstrap_mean_ci(scores * 2, seed=0, n_resamples=2000)
    assert high - low < 0.8 * (two["ci_high"] - two["ci_low"])


def test_bca_falls_back_to_percentile_when_all_scores_are_equal():
    result = stats.robust(one_order(["candidate"] * 20), **FAST)
    assert result["ci_method"] == "percentile"
    assert (result["win_rate"], result["ci_low"], result["ci_high"]) == (1.0, 1.0, 1.0)


def test_lc_win_rate_is_half_when_the_verdict_depends_only_on_length():
    # the candidate is longer on 3 of 4 items and wins exactly when it is longer: raw 0.75
    differences = list(range(-10, 0)) + list(range(1, 31))
    data = verdicts(*({"item": i, "winner": "candidate" if d > 0 else "baseline", "candidate_length": 50 + d,
                       "baseline_length": 50} for i, d in enumerate(differences)))
    result = stats.robust(data, **FAST)
    assert result["win_rate"] == pytest.approx(0.75)
    assert result["lc_win_rate"] == pytest.approx(0.5, abs=0.02)
    assert result["lc_ci_low"] <= result["lc_win_rate"] <= result["lc_ci_high"]


def test_lc_win_rate_reads_the_fit_at_zero_length_difference():
    # expected score = sigmoid(1.5 * d / sd(d)): half at equal lengths, while the candidate is usually longer
    d = np.linspace(-20, 60, 81)
    y = scipy.special.expit(1.5 * d / d.std())
    result = stats.length_controlled_win_rate(y, d, seed=0, n_resamples=200)
    assert y.mean() > 0.65
    assert result["lc_win_rate"] == pytest.approx(0.5, abs=1e-3)
    assert result["lc_length_coef"] == pytest.approx(1.5, abs=1e-2)


def test_lc_win_rate_matches_the_raw_rate_when_length_is_unrelated():
    rng = np.random.default_rng(11)
    winners = mixed_scores(300, seed=7)
    data = verdicts(*({"item": i, "winner": w, "candidate_length": int(rng.integers(10, 80)),
                       "baseline_length": int(rng.integers(10, 80))} for i, w in enumerate(winners)))
    result = stats.robust(data, **FAST)
    assert result["lc_win_rate"] == pytest.approx(result["win_rate"], abs=0.03)


def test_position_consistency_and_first_position_preference_hand_example():
    calls = {  # item: (winner when the candidate is shown first, winner when it is shown second)
        "A": ("candidate", "candidate"),  # consistent; first won, second won
        "B": ("candidate", "baseline"),   # inconsistent; first won twice
        "C": ("tie", "tie"),              # consistent ties; not decisive
        "D": ("tie", "candidate"),        # inconsistent; second won
        "E": (None, "baseline"),          # failure: no consistency pair; first won
    }
    data = verdicts(*({"item": item, "order": order, "winner": winner} for item, pair in calls.items()
                      for order, winner in zip(("candidate_first", "baseline_first"), pair)))
    result = stats.robust(data, **FAST)
    assert result["position_consistency"] == pytest.approx(2 / 4) and result["n_both_orders"] == 4
    assert result["first_position_preference"] == pytest.approx(4 / 6) and result["n_decisive_calls"] == 6


def test_soft_win_rate_from_p_candidate():
    result = stats.robust(verdicts(
        {"item": "a", "order": "candidate_first", "winner": "candidate", "p_candidate": 0.9},
        {"item": "a", "order": "baseline_first", "winner": "candidate", "p_candidate": 0.7},
        {"item": "b", "order": "candidate_first", "winner": "baseline", "p_candidate": 0.2},
        {"item": "c", "order": "candidate_first", "winner": None, "p_candidate": 0.99},
    ), **FAST)
    assert result["soft_win_rate"] == pytest.approx((0.8 + 0.2) / 2) and result["n_soft"] == 2


def test_every_result_is_plain_json_with_the_common_keys():
    data = verdicts(*({"item": i, "winner": w, "candidate_length": 10 + i % 7, "baseline_length": 12}
                      for i, w in enumerate(mixed_scores(60, seed=2))))
    for result in (stats.robust(data, **FAST), stats.sami_paper(data)):
        json.dumps(result, allow_nan=False)
        for key in ("protocol", "n", "win_rate", "ci_low", "ci_high", "ci_level", "sem", "balanced_win_rate",
                    "tie_rate", "parse_failure_rate", "mean_candidate_length", "mean_baseline_length", "note"):
            assert key in result
        assert 0 <= result["ci_low"] <= result["win_rate"] <= result["ci_high"] <= 1


def test_resolution_note_matches_the_spec():
    assert stats.resolution_note(250) == "250 items resolve about ±6 points at 95%"


# --- paired comparison, Bradley-Terry, agreement -----------------------------------------------


def paired_sets(winners_a: list, winners_b: list) -> tuple[list, list]:
    a = verdicts(*({"item": i, "winner": w, "candidate": "a", "baseline": "base"} for i, w in enumerate(winners_a)))
    b = verdicts(*({"item": i, "winner": w, "candidate": "b", "baseline": "base"} for i, w in enumerate(winners_b)))
    return a, b


def test_paired_comparison_detects_a_clear_difference():
    a, b = paired_sets(["candidate"] * 160 + ["baseline"] * 40, ["candidate"] * 80 + ["baseline"] * 120)
    result = stats.paired_comparison(a, b, n_resamples=2000, n_permutations=2000)
    assert result["n_shared"] == 200 and result["difference"] == pytest.approx(0.4)
    assert (result["n_a_better"], result["n_b_better"]) == (80, 0)
    assert result["ci_low"] > 0.3 and result["sign_test_p"] < 1e-6 and result["permutation_p"] < 1e-3


def test_paired_comparison_finds_nothing_in_a_null_difference():
    # a beats b on 30 items, b beats a on 30, equal elsewhere
    a, b = paired_sets(["candidate"] * 30 + ["baseline"] * 30 + ["tie"] * 140,
                       ["baseline"] * 30 + ["candidate"] * 30 + ["tie"] * 140)
    result = stats.paired_comparison(a, b, n_resamples=2000, n_permutations=2000)
    assert result["difference"] == 0 and result["ci_low"] < 0 < result["ci_high"]
    assert result["sign_test_p"] == pytest.approx(1.0) and result["permutation_p"] > 0.5


def test_paired_comparison_uses_only_shared_items_and_one_baseline():
    a, b = paired_sets(["candidate"] * 10, ["baseline"] * 6)
    result = stats.paired_comparison(a, b, n_resamples=2000, n_permutations=2000)
    assert (result["n_shared"], result["n_only_a"], result["n_only_b"]) == (6, 4, 0)
    other = verdicts({"item": 0, "winner": "tie", "candidate": "b", "baseline": "instruct"})
    with pytest.raises(HarnessError, match="same baseline"):
        stats.paired_comparison(a, other)


def test_bradley_terry_recovers_the_ordering_of_three_systems():
    rng = np.random.default_rng(0)
    strength = {"strong": 1.0, "middle": 0.0, "weak": -1.0}
    comparisons = []
    for item in range(200):
        for first, second in (("strong", "middle"), ("middle", "weak"), ("strong", "weak")):
            wins = rng.random() < scipy.special.expit(strength[first] - strength[second])
            comparisons.append((item, first, second, float(wins)))
    result = stats.bradley_terry(comparisons, seed=0, n_resamples=200)
    assert [s["system"] for s in result["systems"]] == ["strong", "middle", "weak"]
    assert sum(s["log_strength"] for s in result["systems"]) == pytest.approx(0, abs=1e-6)
    assert result["n"] == 200 and result["resampling_unit"] == "item"
    for row in result["systems"]:
        assert row["log_strength_ci_low"] <= row["log_strength"] <= row["log_strength_ci_high"]
        assert row["win_rate"] == pytest.approx(scipy.special.expit(row["log_strength"]))
    strong, _, weak = result["systems"]
    assert strong["log_strength"] - weak["log_strength"] == pytest.approx(2.0, abs=0.5)


def test_judge_agreement_and_cohen_kappa_hand_example():
    first = ["candidate", "candidate", "baseline", "baseline", "tie", "candidate", "baseline", "tie", "candidate", "baseline"]
    second = ["candidate", "baseline", "baseline", "baseline", "tie", "candidate", "candidate", "tie", "candidate", "baseline"]
    a = verdicts(*({"item": i, "order": "candidate_first", "winner": w} for i, w in enumerate(first)),
                 {"item": 10, "order": "candidate_first", "winner": None})
    b = verdicts(*({"item": i, "order": "candidate_first", "winner": w} for i, w in enumerate(second)),
                 {"item": 10, "order": "candidate_first", "winner": "tie"},
                 {"item": 11, "order": "candidate_first", "winner": "tie"})
    result = stats.judge_agreement(a, b)
    # p_o = 8/10; both judges: 4 candidate, 4 baseline, 2 tie -> p_e = (16 + 16 + 4) / 100 = 0.36
    assert result["raw_agreement"] == pytest.approx(0.8)
    assert result["cohen_kappa"] == pytest.approx((0.8 - 0.36) / (1 - 0.36))
    assert result["non_tie_agreement"] == pytest.approx(6 / 8) and result["n_non_tie"] == 8
    assert (result["n"], result["n_parse_failures_excluded"], result["n_only_second"]) == (10, 1, 1)


# --- the command ---------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_cli_exits_3_above_the_parse_failure_threshold(tmp_path, capsys):
    rows = [{"item": i, "winner": None if i < 2 else "candidate"} for i in range(10)]  # 20% failed
    path = write_jsonl(tmp_path / "v.jsonl", rows)
    assert main(["stats", path, "--format", "json"]) == 3
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["parse_failure_rate"] == pytest.approx(0.2) and result["parse_failure_exceeded"] is True
    assert "parse-failure rate" in err
    assert main(["stats", path, "--format", "json", "--max-parse-failure-rate", "0.25"]) == 0
    assert main(["stats", path, "--protocol", "sami-paper", "--format", "json"]) == 0  # failures are 0.5 there


def test_cli_json_is_one_object_with_by_pair(tmp_path, capsys):
    rows = [{"item": i, "winner": w, "candidate": c, "baseline": "base"}
            for c in ("x", "y") for i, w in enumerate(["candidate", "baseline", "tie", "candidate"])]
    assert main(["stats", write_jsonl(tmp_path / "two.jsonl", rows), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(r["candidate"], r["win_rate"]) for r in result["by_pair"]] == [("x", 0.625), ("y", 0.625)]
    assert "win_rate" not in result and result["n_pairs"] == 2
    assert main(["stats", write_jsonl(tmp_path / "one.jsonl", rows[:4]), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["win_rate"] == 0.625 and len(result["by_pair"]) == 1 and result["n_resamples"] == 10_000


def test_cli_text_compare_agreement_and_bt(tmp_path, capsys):
    items = range(30)
    a = write_jsonl(tmp_path / "a.jsonl", [{"item": i, "winner": "candidate" if i % 3 else "baseline",
                                           "candidate": "a", "baseline": "base"} for i in items])
    b = write_jsonl(tmp_path / "b.jsonl", [{"item": i, "winner": "candidate" if i % 2 else "baseline",
                                           "candidate": "b", "baseline": "base"} for i in items])
    a_judge2 = write_jsonl(tmp_path / "a2.jsonl", [{"item": i, "winner": "candidate" if i % 2 else "baseline",
                                                  "candidate": "a", "baseline": "base"} for i in items])
    ab = write_jsonl(tmp_path / "ab.jsonl", [{"item": i, "winner": "candidate" if i % 4 else "tie",
                                             "candidate": "a", "baseline": "b"} for i in items])
    assert main(["stats", a]) == 0
    assert "95% CI" in capsys.readouterr().out
    assert main(["stats", a, "--compare", b, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_shared"] == 30
    assert main(["stats", a, "--agreement", a_judge2, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["raw_agreement"] == pytest.approx(np.mean([(i % 3 > 0) == (i % 2 > 0) for i in items]))
    assert main(["stats", "--bt", a, b, ab, "--fit-resamples", "1000", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["system"] for s in result["systems"]][0] == "a" and len(result["inputs"]) == 3


def test_cli_bad_input_exits_2(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"item": 1, "winner": "candidate"}, {"item": 2, "winner": "cand"}])
    assert main(["stats", bad]) == 2
    assert "line 2" in capsys.readouterr().err
    good = write_jsonl(tmp_path / "good.jsonl", [{"item": 1, "winner": "candidate"}])
    assert main(["stats", good, "--resamples", "100"]) == 2
    assert main(["stats", good, good]) == 2
    other_pair = write_jsonl(tmp_path / "other.jsonl", [{"item": 1, "winner": "tie", "candidate": "z"}])
    assert main(["stats", good, "--agreement", other_pair]) == 2
    assert "no calls in common" in capsys.readouterr().err


@pytest.mark.skipif(not OAI1B_JUDGED.is_file(), reason=f"reference data absent: {OAI1B_JUDGED} (../shared/reference)")
def test_gpt4_verdicts_on_the_oai1b_policy():
    data = parse_verdicts(read_oai1b_judged(OAI1B_JUDGED), "oai1b")
    with open(OAI1B_JUDGED, encoding="utf-8", newline="") as handle:
        preferred = [r["preferred"] for r in csv.DictReader(handle) if r["preferred"]]
    expected = preferred.count("ours") / len(preferred)
    paper = stats.sami_paper(data)
    robust = stats.robust(data, **FAST)
    assert paper["win_rate"] == robust["win_rate"] == pytest.approx(expected)
    assert paper["sem"] == pytest.approx(math.sqrt(expected * (1 - expected) / 1000))
    assert robust["ci_low"] < expected < robust["ci_high"]
    assert robust["ci_high"] - robust["ci_low"] == pytest.approx(2 * 1.96 * paper["sem"], abs=0.01)
    assert robust["parse_failure_rate"] == 0 and robust["position_consistency"] is None
    assert 0.5 < robust["first_position_preference"] < 0.65
    # the policy writes longer summaries than the humans; controlling for length lowers its win rate
    assert robust["mean_candidate_length"] > robust["mean_baseline_length"]
    assert robust["lc_win_rate"] < robust["win_rate"]
