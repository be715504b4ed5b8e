"""The admin's preview of a grant change agrees with the runtime matcher (issue 22).

On generated grant sets, changes (add, edit, delete, several at once), claim sets and live
sockets: for every concrete channel of a universe wider than the grants name, every holder's
gain and loss the preview reports for the channel's row is exactly what
``allowed_operations`` gives before and after; a channel no row covers changes for nobody;
and the sockets the preview says would drop subscriptions, and which ones, are exactly those
the runtime rule (``lost_subscriptions`` with the new grants) drops.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oidc.channels import pattern_matches
from oidc.grants import Grant, Operation, allowed_operations, claim_values, lost_subscriptions
from oidc.preview import (
    Effect,
    Holder,
    LiveSocket,
    preview_change,
    probe_of,
    probes_for,
    relevant_claims,
)
from oidc.types import ChannelName

ISSUERS = ("https://a.example", "https://b.example")
CLAIMS = ("groups", "roles", "org.team")
VALUES = ("x", "y", "z")
NAMED = ("a", "b")  # grant targets use these segments; channels also use "c", which none names
TARGETS = tuple(itertools.chain(
    (".".join(p) for n in (1, 2) for p in itertools.product(NAMED, repeat=n)),
    (".".join(p) + ".*" for n in (1, 2) for p in itertools.product(NAMED, repeat=n))))
UNIVERSE = tuple(ChannelName(".".join(p)) for n in (1, 2, 3)
                 for p in itertools.product(("a", "b", "c"), repeat=n))

operations = st.frozensets(st.sampled_from(tuple(Operation)))
grant_fields = st.fixed_dictionaries({
    "issuer": st.sampled_from(ISSUERS), "claim": st.sampled_from(CLAIMS),
    "value": st.sampled_from(VALUES), "target": st.sampled_from(TARGETS), "operations": operations})
team_claim = st.one_of(st.none(), st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES)),
                       st.just(1), st.just(True), st.just({"x": "x"}))


@st.composite
def holders(draw: Any) -> list[Holder]:
    out = []
    for n in range(draw(st.integers(0, 6))):
        team = draw(team_claim)
        claims = {} if team is None else {"org": {"team": team}}
        out.append(Holder(draw(st.sampled_from(ISSUERS)), f"user-{n}",
                          draw(st.frozensets(st.sampled_from(VALUES))),
                          draw(st.frozensets(st.sampled_from(VALUES))), claims))
    return out


@st.composite
def changes(draw: Any) -> tuple[list[Grant], list[Grant]]:
    """Grants before, and after one or more adds, edits and deletes (ids kept on edits)."""
    before = [Grant(grant_id=n, **f) for n, f in enumerate(draw(st.lists(grant_fields, max_size=8)))]
    after = list(before)
    for step in draw(st.lists(st.sampled_from(("add", "edit", "delete")), min_size=1, max_size=3)):
        if step == "add" or not after:
            after.append(Grant(grant_id=100 + len(after), **draw(grant_fields)))
            continue
        index = draw(st.integers(0, len(after) - 1))
        if step == "delete":
            after.pop(index)
        else:
            after[index] = Grant(grant_id=after[index].grant_id, **draw(grant_fields))
    return before, after


def deepest(effects: tuple[Effect, ...], channel: ChannelName) -> Effect | None:
    """The row a channel is shown under: the most specific target covering it."""
    covering = [e for e in effects if pattern_matches(e.target, channel)]
    return max(covering, key=lambda e: (not e.target.endswith(".*"), len(e.target)), default=None)


@settings(max_examples=400, deadline=None)
@given(changes(), holders())
def test_every_reported_gain_and_loss_is_the_matchers_and_none_is_missed(
        change: tuple[list[Grant], list[Grant]], people: list[Holder]) -> None:
    before, after = change
    result = preview_change(before, after, holders=people, sockets=())
    for channel in UNIVERSE:
        row = deepest(result.effects, channel)
        for person in people:
            was = allowed_operations(person, before, channel)
            now = allowed_operations(person, after, channel)
            if row is None:
                assert was == now, (channel, person)
                continue
            for op in Operation:
                assert (person.who in row.gains[op]) == (op in now - was), (channel, row.target, op)
                assert (person.who in row.losses[op]) == (op in was - now), (channel, row.target, op)


@settings(max_examples=300, deadline=None)
@given(changes(), holders(), st.data())
def test_the_sockets_said_to_lose_subscriptions_are_those_the_runtime_drops(
        change: tuple[list[Grant], list[Grant]], people: list[Holder], data: Any) -> None:
    before, after = change
    sockets = [LiveSocket(f"s{n}", data.draw(st.sampled_from(("p1", "p2"))), person,
                          tuple(data.draw(st.lists(st.sampled_from(UNIVERSE), unique=True,
                                                   max_size=4))))
               for n, person in enumerate(people)]
    result = preview_change(before, after, holders=people, sockets=sockets)
    expected = {s.socket: lost_subscriptions(s.holder, after, s.channels) for s in sockets}
    assert {r.socket.socket: r.channels for r in result.revoked} == \
        {k: v for k, v in expected.items() if v}
    for socket in sockets:  # the runtime rule, spelt out once more
        assert expected[socket.socket] == tuple(
            c for c in socket.channels if Operation.SUBSCRIBE not in allowed_operations(
                socket.holder, after, c))
    assert sum(result.by_process.values()) == len(result.revoked)


@settings(max_examples=300, deadline=None)
@given(changes(), holders())
def test_people_passed_as_crowds_get_the_answers_they_get_one_by_one(
        change: tuple[list[Grant], list[Grant]], people: list[Holder]) -> None:
    """What the gateway does with 50,000 logins: group them by the values the change's grants
    name (``relevant_claims``), one representative holding only those values per crowd."""
    before, after = change
    named = relevant_claims(before, after)
    crowds: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for person in people:
        key = (person.issuer, *[frozenset(claim_values(person, c)) & v for c, v in sorted(named.items())])
        crowds.setdefault(key, []).append(person.who)
    grouped = []
    for (issuer, *held), who in crowds.items():
        values: dict[str, frozenset[str]] = dict(zip(sorted(named), held, strict=True))
        team = sorted(values.get("org.team", frozenset()))
        grouped.append((Holder(issuer, "crowd", values.get("groups", frozenset()),
                               values.get("roles", frozenset()), {"org": {"team": team}}), who))
    one_by_one = preview_change(before, after, holders=people, sockets=())
    as_crowds = preview_change(before, after, holders=(), sockets=(), crowds=grouped)
    assert one_by_one.effects == as_crowds.effects
    assert one_by_one.holders_checked == as_crowds.holders_checked


def test_a_pattern_is_probed_below_every_named_channel_and_deeper_pattern() -> None:
    assert probe_of("a.*") == "a.~" and probe_of("a.b") == "a.b"
    assert not pattern_matches("a.b.*", probe_of("a.*"))
    assert list(probes_for({"a.*"}, ["a.b", "a.b.*", "b", "a.*"])) == ["a.*", "a.b", "a.b.*"]


def test_importing_the_preview_loads_no_django() -> None:
    code = ("import sys, oidc.preview; "
            "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
