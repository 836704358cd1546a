"""LLM judges as data (``harness/judges/*.yaml``), their backends, and the judging of response pairs.

    from harness.judging import load_judge, list_judges, judges
    judge = load_judge("robust")          # or a path to a YAML file
    judge.hash                            # enters every cache key and verdict line
"""

from harness.judging.config import DEFAULT_JUDGE, JUDGES_DIR, Judge, JudgeConfig, judges, list_judges, load_judge

__all__ = ["DEFAULT_JUDGE", "JUDGES_DIR", "Judge", "JudgeConfig", "judges", "list_judges", "load_judge"]
