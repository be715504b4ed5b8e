"""Channel names and grant patterns: one documented charset, one normaliser.

A channel name is 1-64 characters from ``a-z 0-9 . - _``; ``.`` separates
segments and no segment is empty (``deploys``, ``alerts.critical``,
``team-a.build_log``). Input is normalised by lowercasing ASCII only: anything
that is not ASCII is refused, so look-alike Unicode (Cyrillic ``\\u0430``, the Kelvin
sign, full-width letters) can never name a second channel that reads the same.

Grants, and only grants, may also use a prefix pattern: a channel name followed
by ``.*`` (``alerts.*``). It matches every channel below that prefix
(``alerts.critical``, ``alerts.db.slow``) but not the prefix itself
(``alerts``) and not a longer word (``alertsx``). Subscribe and publish always
name one concrete channel; a ``*`` there is refused.

Layer group names allow only ``[a-zA-Z0-9._-]`` under 100 characters, so
:func:`group_name` derives them with a hash instead of trusting the charset.
"""

from __future__ import annotations

import hashlib
import string
from typing import Final

from oidc.types import ChannelName

__all__ = [
    "MAX_CHANNEL_LENGTH",
    "WILDCARD_SUFFIX",
    "InvalidChannel",
    "group_name",
    "is_pattern",
    "normalise_channel",
    "normalise_pattern",
    "pattern_matches",
]

MAX_CHANNEL_LENGTH: Final = 64
CHANNEL_CHARSET: Final = frozenset(string.ascii_lowercase + string.digits + ".-_")
WILDCARD_SUFFIX: Final = ".*"


class InvalidChannel(ValueError):
    """A channel name or pattern breaks the rules above. ``error`` is the reason code."""

    error = "invalid_channel"

    def __init__(self, detail: str, *, error: str = "invalid_channel") -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def normalise_channel(raw: object) -> ChannelName:
    """Return the canonical form of a concrete channel name, or raise InvalidChannel."""
    if not isinstance(raw, str):
        raise InvalidChannel("channel must be a string")
    if not raw.isascii():
        raise InvalidChannel("channel must be ASCII (a-z, 0-9, '.', '-', '_')")
    if "*" in raw:
        raise InvalidChannel("wildcards are allowed only in grants", error="wildcard_channel")
    name = raw.lower()
    if not 1 <= len(name) <= MAX_CHANNEL_LENGTH:
        raise InvalidChannel(f"channel must be 1-{MAX_CHANNEL_LENGTH} characters")
    bad = sorted(set(name) - CHANNEL_CHARSET)
    if bad:
        raise InvalidChannel(f"channel contains characters outside a-z 0-9 . - _: {bad!r}")
    if "" in name.split("."):
        raise InvalidChannel("channel has an empty segment ('..' or a leading/trailing '.')")
    return ChannelName(name)


def is_pattern(pattern: str) -> bool:
    return pattern.endswith(WILDCARD_SUFFIX)


def normalise_pattern(raw: object) -> str:
    """A grant's target: a concrete channel name, or ``<channel name>.*``."""
    if isinstance(raw, str) and raw.endswith(WILDCARD_SUFFIX):
        prefix = raw[: -len(WILDCARD_SUFFIX)]
        if not prefix:
            raise InvalidChannel("a pattern needs a prefix, like alerts.*")
        if len(prefix) + len(WILDCARD_SUFFIX) > MAX_CHANNEL_LENGTH:
            raise InvalidChannel(f"pattern must be at most {MAX_CHANNEL_LENGTH} characters")
        return normalise_channel(prefix) + WILDCARD_SUFFIX
    return normalise_channel(raw)


def pattern_matches(pattern: str, channel: ChannelName) -> bool:
    """Whether a normalised grant target covers a normalised concrete channel."""
    if is_pattern(pattern):
        return channel.startswith(pattern[:-1]) and len(channel) > len(pattern) - 1
    return pattern == channel


def group_name(channel: ChannelName) -> str:
    """The channel-layer group of a channel: fixed length, always in the layer's charset."""
    return "gw.ch." + hashlib.sha256(channel.encode("ascii")).hexdigest()[:40]
