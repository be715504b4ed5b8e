"""The database's crowds of logins (``gateway.oversight.logins``) hold, for every person,
exactly what their whole snapshot holds at each involved claim path, as the matcher reads it
(issue 22): in SQL flags and JSON texts, grouped row by row in Python, or read whole."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gateway.login.known import lines, matched_as
from gateway.models import KnownClaims
from gateway.oversight import logins
from gateway.oversight.logins import Known, known_holders
from oidc.grants import claim_values
from oidc.preview import Holder, Who

pytestmark = pytest.mark.django_db(transaction=True)

A, B = "https://a.example", "https://b.example"
URL_CLAIM = "https://c.example/team"
SNAPSHOTS: list[tuple[str, dict[str, Any]]] = [
    (A, {"groups": ["eng", "ops"], "roles": ["lead"], "org": {"team": "x"}}),
    (A, {"groups": ["eng"], "org": {"team": ["x", "y", 1]}, "email": "a@x.example"}),
    (A, {"groups": ["ENG"], "org": {"team": "X"}}),  # case matters: SQLite's LIKE ignores it
    (A, {"groups": ["eng"], "org": ["team"], "email": ["a@x.example"]}),
    (A, {"groups": [], "org": {"team": {"x": "x"}}, URL_CLAIM: "x"}),
    (A, {"groups": ["e%g", "two\nlines"], "org": {"team": True}}),  # read whole
    (A, {"org": "x", "roles": ["lead", "dev"]}),
    (A, {"org": {"team": None}, URL_CLAIM: ["x", "y"]}),
    (A, {"org.team": "x", "groups": ["eng"]}),  # a flat key with a dot is no path
    (B, {"groups": ["eng"], "org": {"team": "x"}, "caf\u00e9": "x"}),
    (B, {"groups": ["eng"], "org": {"team": 'x "quoted"'}, "email": "b@x.example"}),
    (B, {}),
]
INVOLVED: list[dict[str, frozenset[str]]] = [
    {"groups": frozenset({"eng"})},
    {"groups": frozenset({"eng", "e%g"}), "org.team": frozenset({"x"})},
    {"org": frozenset({"x"}), "org.team": frozenset({"x", "y"})},
    {URL_CLAIM: frozenset({"x", "y"}), "roles": frozenset({"lead"})},
    {"email": frozenset({"a@x.example"}), "org.team": frozenset({'x "quoted"'})},
    {"caf\u00e9": frozenset({"x"}), "groups": frozenset({"ops"})},  # SQLite cannot spell it
]


@pytest.fixture(autouse=True)
def _logins() -> None:
    for n, (issuer, claims) in enumerate(SNAPSHOTS):
        snapshot = {"issuer": issuer, "subject": f"s{n}", "scopes": [], **claims}
        KnownClaims.objects.create(
            issuer=issuer, subject=f"s{n}", username=f"u{n}", seen_at=timezone.now(),
            snapshot=snapshot, groups=lines(claims.get("groups", [])),
            roles=lines(claims.get("roles", [])))


def views(known: Known, involved: Mapping[str, frozenset[str]]) -> dict[Who, dict[str, frozenset[str]]]:
    """What each person read holds at each involved path, as the matcher reads it."""
    def view(holder: Holder) -> dict[str, frozenset[str]]:
        return {path: claim_values(holder, path) & values for path, values in involved.items()}
    found = {holder.who: view(holder) for holder in known.people}
    for representative, people in known.crowds:
        assert not found.keys() & set(people)  # in one crowd, once
        found.update(dict.fromkeys(people, view(representative)))
    return found


@pytest.mark.parametrize("grouping", ["sql", "by_row", "whole"])
@pytest.mark.parametrize("involved", INVOLVED)
def test_each_login_is_read_as_its_whole_snapshot_is_matched(
        involved: dict[str, frozenset[str]], grouping: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if grouping == "by_row":
        monkeypatch.setattr(logins, "MAX_FLAGS", 0)
    if grouping == "whole":
        monkeypatch.setattr(logins, "extractable", lambda paths: False)
    read = views(known_holders(timezone.now() - timedelta(days=1), involved=involved), involved)
    for row in KnownClaims.objects.all():
        seen = matched_as(row.snapshot)
        assert seen is not None
        truth = {path: claim_values(Holder(*seen), path) & values for path, values in involved.items()}
        if any(truth.values()):
            assert read.get((row.issuer, row.subject)) == truth, row.snapshot
        else:  # holding nothing involved: left out, or read as holding nothing
            assert not any(read.get((row.issuer, row.subject), {}).values()), row.snapshot
    assert any(any(v.values()) for v in read.values())
