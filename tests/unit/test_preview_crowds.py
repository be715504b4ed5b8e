"""Crowds: people grouped by the values a change's grants can see of them, asked about
through one representative each (``oidc.preview.crowd_holder``), get exactly the answers
they get one by one, on generated grants, changes and claims whose paths nest (``org`` and
``org.team``), name a URL claim, or hold lists, numbers and objects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc.grants import Grant, Operation, claim_values
from oidc.preview import Holder, crowd_holder, preview_change, relevant_claims

ISSUERS = ("https://a.example", "https://b.example")
URL_CLAIM = "https://c.example/team"
CLAIMS = ("groups", "roles", "org", "org.team", "org.team.lead", URL_CLAIM)
VALUES = ("x", "y", "z")
TARGETS = ("a", "a.*", "a.b", "b.*")

scalar = st.one_of(st.sampled_from(VALUES), st.lists(st.one_of(st.sampled_from(VALUES), st.just(1))),
                   st.just(True), st.just(None))
node: Any = st.recursive(scalar, lambda inner: st.dictionaries(
    st.sampled_from(("team", "lead", "x")), inner, max_size=2), max_leaves=4)
grants = st.lists(st.builds(
    Grant, issuer=st.sampled_from(ISSUERS), claim=st.sampled_from(CLAIMS),
    value=st.sampled_from(VALUES), target=st.sampled_from(TARGETS),
    operations=st.frozensets(st.sampled_from(tuple(Operation)), min_size=1)), max_size=6)


@st.composite
def people(draw: Any) -> list[Holder]:
    return [Holder(draw(st.sampled_from(ISSUERS)), f"user-{n}",
                   draw(st.frozensets(st.sampled_from(VALUES))),
                   draw(st.frozensets(st.sampled_from(VALUES))),
                   draw(st.dictionaries(st.sampled_from(("org", URL_CLAIM, "x")), node, max_size=3)))
            for n in range(draw(st.integers(0, 8)))]


def crowds_of(holders: list[Holder], named: dict[str, frozenset[str]]
              ) -> list[tuple[Holder, list[tuple[str, str]]]]:
    """What the gateway does: group by issuer and the named values held at each named path."""
    paths = sorted(named)
    grouped: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for person in holders:
        key = (person.issuer, *[claim_values(person, p) & named[p] for p in paths])
        grouped.setdefault(key, []).append(person.who)
    return [(crowd_holder(issuer, dict(zip(paths, held, strict=True))), who)
            for (issuer, *held), who in grouped.items()]


@settings(max_examples=400, deadline=None)
@given(grants, grants, people())
def test_a_crowds_representative_gets_the_answers_each_of_its_people_gets(
        before: list[Grant], after: list[Grant], holders: list[Holder]) -> None:
    named = relevant_claims(before, after)
    one_by_one = preview_change(before, after, holders=holders, sockets=())
    as_crowds = preview_change(before, after, holders=(), sockets=(),
                               crowds=crowds_of(holders, named))
    assert as_crowds.effects == one_by_one.effects
    assert as_crowds.holders_checked == one_by_one.holders_checked


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ISSUERS), st.fixed_dictionaries(
    {}, optional={c: st.frozensets(st.sampled_from(VALUES)) for c in CLAIMS}))
def test_a_representative_holds_exactly_the_values_it_stands_for(
        issuer: str, held: dict[str, frozenset[str]]) -> None:
    nested = [p for p in held if held[p] and any(q.startswith(p + ".") and held[q] for q in held)]
    if nested:  # values at a path and below it: no claims can hold both
        with pytest.raises(ValueError, match="lies below values held"):
            crowd_holder(issuer, held)
        return
    representative = crowd_holder(issuer, held)
    assert representative.issuer == issuer
    assert {p: claim_values(representative, p) for p in held} == held
