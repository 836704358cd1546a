"""Leaderboard ranking: blocks per (task, principle split, baseline), order by win rate, ranks shared by
overlapping CIs (a row is outranked only by rows whose whole CI lies above its own)."""

from harness.flow.leaderboard import rank_rows


def row(system, win_rate, low, high, baseline="base", task="tldr", split="train"):
    return {"task": task, "principle_split": split, "baseline": baseline, "system": system, "win_rate": win_rate,
            "ci_low": low, "ci_high": high}


def test_rank_counts_rows_whose_whole_ci_is_above():
    ranked = rank_rows([row("c", 0.40, 0.35, 0.45), row("a", 0.80, 0.70, 0.90), row("b", 0.60, 0.44, 0.75)])
    assert [(r["system"], r["rank"], r["tied"]) for r in ranked] == [("a", 1, True), ("b", 1, True), ("c", 2, False)]


def test_separated_cis_give_distinct_ranks_and_equal_win_rates_sort_by_name():
    ranked = rank_rows([row("z", 0.5, 0.45, 0.55), row("y", 0.5, 0.45, 0.55), row("x", 0.9, 0.85, 0.95)])
    assert [(r["system"], r["rank"]) for r in ranked] == [("x", 1), ("y", 2), ("z", 2)]
    assert [r["tied"] for r in ranked] == [False, True, True]


def test_blocks_are_ranked_separately_and_ordered():
    rows = [row("a", 0.9, 0.85, 0.95, baseline="instruct"), row("b", 0.2, 0.1, 0.3, baseline="instruct"),
            row("b", 0.9, 0.85, 0.95), row("a", 0.2, 0.1, 0.3), row("a", 0.6, 0.5, 0.7, split="heldout")]
    ranked = rank_rows(rows)
    assert [(r["principle_split"], r["baseline"], r["system"], r["rank"]) for r in ranked] == [
        ("heldout", "base", "a", 1),
        ("train", "base", "b", 1), ("train", "base", "a", 2),
        ("train", "instruct", "a", 1), ("train", "instruct", "b", 2)]


def test_rows_without_a_ci_share_the_top_rank_and_the_reference_row_has_none():
    ranked = rank_rows([row("one-item", 1.0, None, None), row("base", None, None, None), row("a", 0.6, 0.5, 0.7)])
    assert [(r["system"], r["rank"], r["tied"]) for r in ranked] == [("one-item", 1, True), ("a", 1, True),
                                                                     ("base", None, False)]
