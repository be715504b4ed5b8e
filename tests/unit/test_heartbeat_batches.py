"""The heartbeat refreshes its entries in bounded batches (gateway.ops.heartbeat.batches)."""

from __future__ import annotations

from gateway.ops.heartbeat import batches


def test_every_member_lands_in_exactly_one_batch_of_at_most_the_size() -> None:
    members = {"big": {f"s{i}": 1.0 for i in range(7)}, "small": {"x": 2.0}, "empty": {}}
    cut = batches(members, size=3)
    assert [sum(len(scores) for _, scores in batch) for batch in cut] == [3, 3, 2]
    merged: dict[str, dict[str, float]] = {}
    for batch in cut:
        for key, scores in batch:
            assert not set(scores) & set(merged.get(key, {}))
            merged.setdefault(key, {}).update(scores)
    assert merged == {"big": members["big"], "small": {"x": 2.0}}


def test_nothing_to_refresh_is_no_batch() -> None:
    assert batches({}) == []
    assert batches({"k": {}}) == []
