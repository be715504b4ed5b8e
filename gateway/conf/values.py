"""Small parsers for environment values; each error names the variable and the fix."""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the fix."""


def read_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false.")


def csv(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def read_seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: use a number of seconds.") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: use a value from {low:g} to {high:g}.")
    return value


def read_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: use a whole number from {low} to {high}.") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: use a whole number from {low} to {high}.")
    return value


def read_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str,
                hint: str) -> str:
    """One of ``choices`` (compared without case), or ConfigError naming them and ``hint``."""
    raw = env.get(name, "").strip() or default
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ConfigError(f"{name}={raw!r}: use {hint}.")
