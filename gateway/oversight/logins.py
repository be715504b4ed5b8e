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
from django.db.models import Aggregate, F, Func, IntegerField, Q, TextField, Value
from django.db.models.functions import Cast, Concat, StrIndex

from gateway.login.known import READ_SNAPSHOT, matched_as
from gateway.models import KnownClaims
from oidc.grants import string_values
from oidc.preview import Holder, Who, crowd_holder
from oidc.profiles import claim_path

NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})
NORMALISED = ("groups", "roles")  # read from their own columns, not the snapshot
MAX_FILTERED_VALUES = 100
MAX_FLAGS = 4
"""Involved groups and roles values the database reports as flags. Each flag costs SQLite
about as much per row as Python's substring test on the row costs for five (bench: 50,000
logins, 1 value 0.08 s in SQL against 0.15 s here, 20 values 0.44 s against 0.21 s)."""

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


def holding_any(involved: Mapping[str, frozenset[str]], text_at: Mapping[str, str]) -> Q | None:
    """Rows that may hold one of the values: in their groups or roles, or, for other claim
    paths, in the JSON text ``text_at`` names for the path (None: too many values to ask the
    database, or one that JSON may write in more than one way)."""
    terms = [(claim, v) for claim, values in involved.items() for v in values]
    others = [v for claim, v in terms if claim not in NORMALISED]
    if len(terms) > MAX_FILTERED_VALUES or not all(PLAIN.fullmatch(v) for v in others):
        return None
    query = Q(groups__contains=READ_SNAPSHOT) | Q(roles__contains=READ_SNAPSHOT)
    for claim, value in terms:
        if claim in NORMALISED:
            query |= Q(**{f"{claim}_lines__contains": f"\n{value}\n"})
        else:
            query |= Q(**{f"{text_at[claim]}__contains": json.dumps(value)})
    return query


def known_holders(seen_since: datetime, *, involved: Mapping[str, frozenset[str]]) -> Known:
    """Everyone seen since then, as their last login's principal would be matched by the
    grants that name the ``involved`` claim paths and values: in crowds where the database
    can say what they hold (module docstring), otherwise one by one. Rows holding none of
    the involved values gain and lose nothing and are left out when the database can say so."""
    paths = sorted(involved.keys() - set(NORMALISED))
    # an empty value cannot be told apart from no value in the groups and roles columns
    fast = extractable(paths) and not any("" in involved.get(c, ()) for c in NORMALISED)
    columns: dict[str, Any] = ({f"claim_{n}": ClaimJson(path) for n, path in enumerate(paths)}
                               if fast else {"snapshot_text": Cast("snapshot", TextField())})
    recent = KnownClaims.objects.filter(seen_at__gte=seen_since).annotate(
        groups_lines=Concat(Value("\n"), "groups", Value("\n"), output_field=TextField()),
        roles_lines=Concat(Value("\n"), "roles", Value("\n"), output_field=TextField()),
        **columns)
    if not fast:
        only = holding_any(involved, dict.fromkeys(paths, "snapshot_text"))
        return Known(_one_by_one(recent if only is None else recent.filter(only)), ())
    # no filter: the grouping computes the same flags and texts once, and the rows holding
    # none of the values are dropped below without reading their subjects
    wanted = [tuple(sorted(involved.get(claim, ()))) for claim in NORMALISED]
    grouped = _grouped_in_sql if sum(map(len, wanted)) <= MAX_FLAGS else _grouped_by_row
    by_text, odd = grouped(recent, wanted, tuple(columns))
    return Known(_one_by_one(_logins_of(odd)), _merged(by_text, involved, paths))


Wanted = Sequence[tuple[str, ...]]  # the involved groups, then roles, sorted
ByText = dict[tuple[Any, ...], list[Who]]  # (issuer, groups held, roles held, *JSON texts)
Grouped = tuple[ByText, list[Who]]  # and the people whose groups or roles hold a line break


def _logins_of(people: Sequence[Who]) -> Any:
    """These people's rows (by issuer, then subject: the unique index)."""
    by_issuer: dict[str, list[str]] = {}
    for issuer, subject in people:
        by_issuer.setdefault(issuer, []).append(subject)
    wanted = Q(pk__in=[])
    for issuer, subjects in by_issuer.items():
        wanted |= Q(issuer=issuer, subject__in=subjects)
    return KnownClaims.objects.filter(wanted)


class Subjects(Aggregate):
    """The subjects of a group of rows, as the text of one JSON array."""

    function = "JSON_GROUP_ARRAY"
    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any,
                      **extra: Any) -> tuple[str, tuple[str | int, ...]]:
        return self.as_sql(compiler, connection, function="JSON_AGG",
                           template="%(function)s(%(expressions)s)::text", **extra)


def holds(text: Any, part: str) -> Func:
    """1 where ``text`` holds ``part``, else 0: case-sensitive (INSTR, STRPOS), unlike LIKE in
    SQLite, and native (Django's SIGN is a Python function in SQLite)."""
    return Func(StrIndex(text, Value(part)), template="(CASE WHEN %(expressions)s > 0 THEN 1 ELSE 0 END)",
                output_field=IntegerField())


def _grouped_in_sql(recent: Any, wanted: Wanted, columns: Sequence[str]) -> Grouped:
    """Rows grouped by the database: one row per issuer, involved groups and roles held (as
    case-sensitive flags) and JSON texts, with its subjects."""
    flags = {f"{claim}_{n}": holds(f"{claim}_lines", f"\n{v}\n")
             for claim, values in zip(NORMALISED, wanted, strict=True) for n, v in enumerate(values)}
    odd = holds(Concat("groups", "roles", output_field=TextField()), READ_SNAPSHOT)
    by_text: ByText = {}
    odd_people: list[Who] = []
    for row in recent.annotate(odd=odd, **flags).order_by().values(
            "issuer", "odd", *flags, *columns).annotate(subjects=Subjects("subject")):
        texts = [row[c] for c in columns]
        if not row["odd"] and not any(row[f] for f in flags) and all(t is None for t in texts):
            continue  # holds none of the involved values
        people = [(row["issuer"], s) for s in json.loads(row["subjects"])]
        if row["odd"]:
            odd_people.extend(people)
            continue
        held = [frozenset(v for n, v in enumerate(values) if row[f"{claim}_{n}"])
                for claim, values in zip(NORMALISED, wanted, strict=True)]
        by_text.setdefault((row["issuer"], *held, *texts), []).extend(people)
    return by_text, odd_people


def _grouped_by_row(recent: Any, wanted: Wanted, columns: Sequence[str]) -> Grouped:
    """Rows grouped here, one by one (too many involved values to ask as flags)."""
    needles = [tuple((v, f"\n{v}\n") for v in values) for values in wanted]
    by_text: ByText = {}
    odd_people: list[Who] = []
    for issuer, subject, groups, roles, *texts in rows(
            recent.values_list("issuer", "subject", "groups", "roles", *columns)):
        if READ_SNAPSHOT in groups or READ_SNAPSHOT in roles:
            odd_people.append((issuer, subject))
            continue
        key = (issuer, _held(needles[0], groups), _held(needles[1], roles), *texts)
        crowd = by_text.get(key)
        if crowd is None:
            crowd = by_text[key] = []
        crowd.append((issuer, subject))
    return by_text, odd_people


def _held(needles: tuple[tuple[str, str], ...], column: str) -> frozenset[str]:
    """Which wanted values a groups or roles column (one value a line) holds."""
    if not column or not needles:
        return frozenset()
    lined = f"\n{column}\n"
    return frozenset(v for v, needle in needles if needle in lined)


def _merged(by_text: ByText, involved: Mapping[str, frozenset[str]],
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
        if any(held):  # holding none of the involved values, they gain and lose nothing
            crowds.setdefault((issuer, *held), []).extend(who)
    return tuple((crowd_holder(issuer, dict(zip((*NORMALISED, *paths), held, strict=True))),
                  tuple(who)) for (issuer, *held), who in crowds.items())


def _one_by_one(recent: Any) -> tuple[Holder, ...]:
    """Each row's whole snapshot, as its session principal would be matched."""
    people = []
    for issuer, subject, snapshot in rows(recent.values_list("issuer", "subject", "snapshot")):
        if isinstance(snapshot, str):  # SQLite hands JSON back as text, PostgreSQL decoded
            snapshot = json.loads(snapshot)
        seen = matched_as(snapshot) if isinstance(snapshot, dict) else None
        if seen is not None and seen[:2] == (issuer, subject):
            people.append(Holder(*seen))
    return tuple(people)
