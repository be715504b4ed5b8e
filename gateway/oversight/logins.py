"""People seen lately, read for the preview of a grant change (``KnownClaims``).

A change's grants read a few values at a few claim paths (``oidc.preview.relevant_claims``);
nothing else of anyone's claims matters to it. So the database hands back, per login, only
its groups and roles columns and the JSON text at each other involved claim path
(``ClaimJson``: found key by key, as ``oidc.profiles.lookup`` walks it). People holding the
same involved values form one crowd, asked about once through a representative
(``oidc.preview.crowd_holder``); each distinct JSON text is decoded once. Logins the database
cannot answer that way (a group holding a line break, a claim path SQLite cannot spell, a
database without JSON operators) are read whole, one holder each, as before.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, Func, Q, TextField, Value
from django.db.models.functions import Cast, Concat

from gateway.login.known import READ_SNAPSHOT, matched_as
from gateway.models import KnownClaims
from oidc.grants import string_values
from oidc.preview import Holder, Who, crowd_holder
from oidc.profiles import claim_path

NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})
NORMALISED = ("groups", "roles")  # read from their own columns, not the snapshot
MAX_FILTERED_VALUES = 100

PLAIN = re.compile(r"[A-Za-z0-9 ._:/@+=-]+")
"""Values written the same way inside JSON text by SQLite (Django's json.dumps) and by
PostgreSQL (jsonb as text): no quote, backslash, control or non-ASCII character."""

SQLITE_KEY = re.compile(r"[A-Za-z0-9 ._:/@+=-]+")
"""Keys SQLite finds as a quoted JSON path label: stored unescaped by json.dumps, and free of
the quote that would end the label."""


@dataclass(frozen=True)
class Known:
    """People seen lately: read one by one (``people``), or grouped into ``crowds`` by the
    involved values they hold."""

    people: tuple[Holder, ...]
    crowds: tuple[tuple[Holder, tuple[Who, ...]], ...]
    names: dict[Who, str]

    def everyone(self) -> set[Who]:
        return {h.who for h in self.people}.union(*(who for _, who in self.crowds))


class ClaimJson(Func):
    """The JSON text at a claim path of ``KnownClaims.snapshot``, NULL where ``lookup`` would
    walk off: every step is an object key, never an array index (SQLite's quoted path label,
    PostgreSQL's ``jsonb -> text``)."""

    output_field = TextField()

    def __init__(self, path: str) -> None:
        super().__init__(F("snapshot"))
        self.keys = claim_path(path)

    def as_sqlite(self, compiler: Any, connection: Any,
                  **extra: Any) -> tuple[str, tuple[str | int, ...]]:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"({sql} -> %s)", (*params, "$" + "".join(f'."{k}"' for k in self.keys))

    def as_postgresql(self, compiler: Any, connection: Any,
                      **extra: Any) -> tuple[str, tuple[str | int, ...]]:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"(({sql}){' -> %s::text' * len(self.keys)})::text", (*params, *self.keys)


def extractable(paths: Sequence[str]) -> bool:
    """Whether this database can hand back the JSON at every one of these claim paths."""
    if not paths or connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 38):
        return all(SQLITE_KEY.fullmatch(key) for path in paths for key in claim_path(path))
    return False


def rows(query: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of a ``values_list`` of text columns, without the ORM's per-row work."""
    try:
        sql, params = query.query.sql_with_params()
    except EmptyResultSet:  # e.g. pk__in=[]: nothing to read
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while found := cursor.fetchmany(10_000):
            yield from found


def holding_any(involved: Mapping[str, frozenset[str]]) -> Q | None:
    """Rows that may hold one of the values: in their groups or roles, or, for other claim
    paths, anywhere in their snapshot's JSON text (None: too many values to ask the database,
    or one that JSON may write in more than one way)."""
    terms = [(claim, v) for claim, values in involved.items() for v in values]
    others = [v for claim, v in terms if claim not in NORMALISED]
    if len(terms) > MAX_FILTERED_VALUES or not all(PLAIN.fullmatch(v) for v in others):
        return None
    query = Q(groups__contains=READ_SNAPSHOT) | Q(roles__contains=READ_SNAPSHOT)
    for claim, value in terms:
        if claim in NORMALISED:
            query |= Q(**{f"{claim}_lines__contains": f"\n{value}\n"})
        else:
            query |= Q(snapshot_text__contains=json.dumps(value))
    return query


def known_holders(seen_since: datetime, *, involved: Mapping[str, frozenset[str]]) -> Known:
    """Everyone seen since then, as their last login's principal would be matched by the
    grants that name the ``involved`` claim paths and values: in crowds where the database
    can say what they hold (module docstring), otherwise one by one. Rows holding none of
    the involved values gain and lose nothing and are left out when the database can say so."""
    recent = KnownClaims.objects.filter(seen_at__gte=seen_since)
    only = holding_any(involved)
    if only is not None:
        recent = recent.annotate(
            groups_lines=Concat(Value("\n"), "groups", Value("\n"), output_field=TextField()),
            roles_lines=Concat(Value("\n"), "roles", Value("\n"), output_field=TextField()),
            snapshot_text=Cast("snapshot", TextField()),
        ).filter(only)
    paths = sorted(involved.keys() - set(NORMALISED))
    names: dict[Who, str] = {}
    crowds: tuple[tuple[Holder, tuple[Who, ...]], ...] = ()
    if extractable(paths):
        crowds, slow = _crowds(recent, involved, paths, names)
        recent = KnownClaims.objects.filter(pk__in=slow)
    return Known(_one_by_one(recent, names), crowds, names)


def _crowds(recent: Any, involved: Mapping[str, frozenset[str]], paths: Sequence[str],
            names: dict[Who, str]) -> tuple[tuple[tuple[Holder, tuple[Who, ...]], ...], list[int]]:
    """Crowds of the rows whose groups and roles columns can be read, and the others' ids."""
    columns = {f"claim_{n}": ClaimJson(path) for n, path in enumerate(paths)}
    wanted = [tuple((v, f"\n{v}\n") for v in sorted(involved.get(claim, ()))) for claim in NORMALISED]
    by_text: dict[tuple[Any, ...], list[Who]] = {}
    slow: list[int] = []
    for pk, issuer, subject, username, groups, roles, *texts in rows(
            recent.annotate(**columns).values_list(
                "pk", "issuer", "subject", "username", "groups", "roles", *columns)):
        if READ_SNAPSHOT in groups or READ_SNAPSHOT in roles:
            slow.append(pk)
            continue
        key = (issuer, _held(wanted[0], groups), _held(wanted[1], roles), *texts)
        crowd = by_text.get(key)
        if crowd is None:
            crowd = by_text[key] = []
        crowd.append((issuer, subject))
        names[(issuer, subject)] = username
    return _merged(by_text, involved, paths), slow


def _held(wanted: tuple[tuple[str, str], ...], column: str) -> frozenset[str]:
    """Which wanted values a groups or roles column (one value a line) holds."""
    if not column or not wanted:
        return frozenset()
    lined = f"\n{column}\n"
    return frozenset(v for v, needle in wanted if needle in lined)


def _merged(by_text: Mapping[tuple[Any, ...], list[Who]], involved: Mapping[str, frozenset[str]],
            paths: Sequence[str]) -> tuple[tuple[Holder, tuple[Who, ...]], ...]:
    """One crowd per issuer and involved values held: each distinct JSON text decoded once,
    read as the matcher reads a claim (``string_values``), then narrowed to the values the
    grants name."""
    decoded: dict[tuple[str, str | None], frozenset[str]] = {}
    crowds: dict[tuple[Any, ...], list[Who]] = {}
    for (issuer, groups, roles, *texts), who in by_text.items():
        held = [groups, roles]
        for path, text in zip(paths, texts, strict=True):
            values = decoded.get((path, text))
            if values is None:
                node = None if text is None else json.loads(text)
                values = decoded[(path, text)] = string_values(node) & involved[path]
            held.append(values)
        crowds.setdefault((issuer, *held), []).extend(who)
    return tuple((crowd_holder(issuer, dict(zip((*NORMALISED, *paths), held, strict=True))),
                  tuple(who)) for (issuer, *held), who in crowds.items())


def _one_by_one(recent: Any, names: dict[Who, str]) -> tuple[Holder, ...]:
    """Each row's whole snapshot, as its session principal would be matched."""
    people = []
    for issuer, subject, username, snapshot in rows(recent.values_list(
            "issuer", "subject", "username", "snapshot")):
        if isinstance(snapshot, str):  # SQLite hands JSON back as text, PostgreSQL decoded
            snapshot = json.loads(snapshot)
        seen = matched_as(snapshot) if isinstance(snapshot, dict) else None
        if seen is not None and seen[:2] == (issuer, subject):
            people.append(Holder(*seen))
            names[(issuer, subject)] = username
    return tuple(people)
