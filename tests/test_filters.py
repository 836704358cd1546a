"""The paper's generation filters (SPEC section 2) on hand-written examples, their counts and attribution."""

from __future__ import annotations

import pytest

from harness.core.errors import HarnessError
from harness.flow.filters import apply_filters, filters
from harness.flow.generate import QueryGroup, filter_groups
from harness.tasks.loaders import Query
from harness.tasks import get_task

GOOD = "The post describes a landlord who kept the deposit."
OTHER = "The post asks whether to quit a job."


@pytest.mark.parametrize("name, response, kept", [
    ("template_leak", GOOD, True),
    ("template_leak", "The post [insert summary here].", False),
    ("template_leak", "The post is about rent ] and more.", False),
    ("template_leak", "Response: the post is about rent.", False),
    ("template_leak", "The post is about rent.<|im_end|>", False),
    ("template_leak", "Principles: be brief. The post is about rent.", False),
    ("template_leak", "The post is about rent. ### Example", False),
    ("full_stop", GOOD, True),
    ("full_stop", GOOD + "  \n", True),
    ("full_stop", "The post describes a landlord who", False),
    ("full_stop", "The post asks a question?", False),
    ("sorry_refusal", "Here is how to bake bread.", True),
    ("sorry_refusal", "I'm sorry, but I can't help with that.", False),
    ("sorry_refusal", "SORRY, no.", False),
    ("non_empty", GOOD, True),
    ("non_empty", "", False),
    ("non_empty", "  \n ", False),
])
def test_response_filters_on_hand_examples(name, response, kept):
    check = filters.get(name)
    assert check.keeps([response, OTHER]) is kept


def test_distinct_is_a_group_filter():
    check = filters.get("distinct")
    assert check.keeps([GOOD, OTHER])
    assert not check.keeps([GOOD, GOOD])
    assert not check.keeps([GOOD, GOOD + "  "])  # identical up to surrounding whitespace
    assert check.keeps([GOOD, GOOD, OTHER])  # not all identical
    assert not check.keeps([GOOD, GOOD, GOOD, GOOD])
    assert check.keeps([GOOD])


def test_one_bad_response_drops_the_whole_group():
    kept, dropped = apply_filters([[GOOD, "The post [insert"]], ["template_leak"])
    assert kept == [] and dropped == {"template_leak": 1}


def test_counts_per_filter_and_first_rejecting_filter_wins():
    groups = [
        [GOOD, OTHER],                          # 0 kept
        ["", OTHER],                            # 1 non_empty (also fails full_stop: counted once, first filter)
        ["The post [insert here].", OTHER],     # 2 template_leak
        [GOOD, GOOD],                           # 3 distinct
        ["The post has no stop", OTHER],        # 4 full_stop
        ["The post [insert", "The post [insert"],  # 5 template_leak first (also identical, no full stop)
        [OTHER, GOOD],                          # 6 kept
    ]
    order = ["non_empty", "template_leak", "distinct", "full_stop"]
    kept, dropped = apply_filters(groups, order)
    assert kept == [0, 6]
    assert dropped == {"non_empty": 1, "template_leak": 2, "distinct": 1, "full_stop": 1}
    assert sum(dropped.values()) + len(kept) == len(groups)
    # attribution follows the configured order
    kept, dropped = apply_filters(groups, ["full_stop", "distinct", "template_leak", "non_empty"])
    assert kept == [0, 6]
    assert dropped == {"full_stop": 3, "distinct": 1, "template_leak": 1, "non_empty": 0}


def test_every_configured_filter_is_reported_even_at_zero():
    kept, dropped = apply_filters([[GOOD, OTHER]], ["sorry_refusal", "distinct"])
    assert kept == [0] and dropped == {"sorry_refusal": 0, "distinct": 0}
    assert apply_filters([], ["full_stop"]) == ([], {"full_stop": 0})
    assert apply_filters([[GOOD, GOOD]], []) == ([0], {})


def test_unknown_filter_lists_valid_names():
    with pytest.raises(HarnessError) as info:
        apply_filters([[GOOD, OTHER]], ["full_stop", "too_long"])
    message = str(info.value)
    assert "too_long" in message
    for name in ("distinct", "full_stop", "non_empty", "sorry_refusal", "template_leak"):
        assert name in message


def test_task_default_filters_match_the_paper():
    assert set(get_task("tldr").default_filters) >= {"template_leak", "distinct", "full_stop"}
    assert "sorry_refusal" not in get_task("tldr").default_filters
    assert set(get_task("dialogue").default_filters) >= {"template_leak", "distinct", "sorry_refusal"}
    assert "full_stop" not in get_task("dialogue").default_filters
    for task in ("tldr", "dialogue", "heldout"):
        for name in get_task(task).default_filters:
            filters.get(name)


def test_filter_groups_keeps_query_groups():
    groups = [QueryGroup(Query(str(i), "q"), [], responses) for i, responses in
              enumerate([[GOOD, OTHER], [GOOD, GOOD], ["I am sorry.", GOOD]])]
    kept, dropped = filter_groups(groups, get_task("dialogue").default_filters)
    assert [g.query.id for g in kept] == ["0"]
    assert dropped["distinct"] == 1 and dropped["sorry_refusal"] == 1
