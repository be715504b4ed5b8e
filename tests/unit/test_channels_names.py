"""Channel names and grant patterns (oidc.channels): pure, no database."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oidc.channels import (
    MAX_CHANNEL_LENGTH,
    InvalidChannel,
    group_name,
    normalise_channel,
    normalise_pattern,
    pattern_matches,
)
from oidc.types import ChannelName

VALID_RE = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
LAYER_GROUP_RE = re.compile(r"^[a-zA-Z\d\-_.]+$")


@pytest.mark.parametrize(("raw", "expected"), [
    ("deploys", "deploys"),
    ("Alerts.Critical", "alerts.critical"),
    ("team-a.build_log", "team-a.build_log"),
    ("a", "a"),
    ("x" * MAX_CHANNEL_LENGTH, "x" * MAX_CHANNEL_LENGTH),
    ("0.1.2", "0.1.2"),
])
def test_valid_names_are_normalised(raw: str, expected: str) -> None:
    assert normalise_channel(raw) == expected


@pytest.mark.parametrize(("raw", "error"), [
    ("", "invalid_channel"),
    ("x" * (MAX_CHANNEL_LENGTH + 1), "invalid_channel"),
    (".deploys", "invalid_channel"),
    ("deploys.", "invalid_channel"),
    ("a..b", "invalid_channel"),
    ("with space", "invalid_channel"),
    ("slash/x", "invalid_channel"),
    ("\u0430lerts", "invalid_channel"),  # Cyrillic a
    ("\u212aelvin", "invalid_channel"),  # Kelvin sign, which .lower() turns into ASCII k
    ("\uff44eploys", "invalid_channel"),  # full-width d
    ("deploys\x00", "invalid_channel"),
    ("alerts.*", "wildcard_channel"),
    ("*", "wildcard_channel"),
    (None, "invalid_channel"),
    (42, "invalid_channel"),
    (["deploys"], "invalid_channel"),
])
def test_invalid_names_are_refused(raw: object, error: str) -> None:
    with pytest.raises(InvalidChannel) as caught:
        normalise_channel(raw)
    assert caught.value.error == error


@pytest.mark.parametrize(("raw", "expected"), [
    ("alerts.*", "alerts.*"),
    ("ALERTS.DB.*", "alerts.db.*"),
    ("deploys", "deploys"),
])
def test_patterns(raw: str, expected: str) -> None:
    assert normalise_pattern(raw) == expected


@pytest.mark.parametrize("raw", [".*", "*", "alerts*", "alerts.*.x", "a.*.*", "alerts..*",
                                 "x" * 63 + ".*"])
def test_bad_patterns(raw: str) -> None:
    with pytest.raises(InvalidChannel):
        normalise_pattern(raw)


@pytest.mark.parametrize(("pattern", "channel", "matches"), [
    ("alerts.*", "alerts.critical", True),
    ("alerts.*", "alerts.db.slow", True),
    ("alerts.*", "alerts", False),
    ("alerts.*", "alertsx.critical", False),
    ("alerts.*", "deploys", False),
    ("deploys", "deploys", True),
    ("deploys", "deploys.prod", False),
    ("deploys", "deploy", False),
])
def test_pattern_matches(pattern: str, channel: str, matches: bool) -> None:
    assert pattern_matches(pattern, ChannelName(channel)) is matches


@given(st.text(max_size=80))
def test_normaliser_accepts_exactly_the_documented_charset(raw: str) -> None:
    try:
        name = normalise_channel(raw)
    except InvalidChannel:
        lowered = raw.lower() if raw.isascii() else None
        assert lowered is None or not (VALID_RE.fullmatch(lowered) and len(lowered) <= 64)
    else:
        assert raw.isascii()
        assert VALID_RE.fullmatch(name) and 1 <= len(name) <= MAX_CHANNEL_LENGTH
        assert name == raw.lower()
        assert normalise_channel(name) == name  # idempotent


channel_names = st.from_regex(r"\A[a-z0-9_-]{1,8}(\.[a-z0-9_-]{1,8}){0,3}\Z")


@given(channel_names, channel_names)
def test_prefix_pattern_matches_only_below_its_prefix(prefix: str, channel: str) -> None:
    pattern = normalise_pattern(prefix + ".*")
    name = normalise_channel(channel)
    assert pattern_matches(pattern, name) == name.startswith(prefix + ".")
    assert pattern_matches(normalise_pattern(prefix), name) == (name == prefix)


@given(channel_names)
def test_case_variants_normalise_to_one_name(name: str) -> None:
    variants = {name.upper(), name.title(), name.swapcase()}
    assert {normalise_channel(v) for v in variants} == {name}


@given(st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=64))
def test_group_names_fit_the_layer(raw: str) -> None:
    try:
        name = normalise_channel(raw)
    except InvalidChannel:
        return
    group = group_name(name)
    assert LAYER_GROUP_RE.match(group) and len(group) < 100
