"""Limits: the token bucket (injected clock) and their configuration (errors name the fix)."""

from __future__ import annotations

import pytest

from consumers.ratelimit import TokenBucket
from gateway.conf.env import Limits, load_config
from gateway.conf.values import ConfigError

BASE = {"GATEWAY_OIDC_ISSUER": "https://idp.example.com", "GATEWAY_OIDC_CLIENT_ID": "gw",
        "GATEWAY_OIDC_CLIENT_SECRET": "s", "GATEWAY_SECRET_KEY": "x" * 40}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2 per second
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # refills up to the burst, not beyond
    assert sum(bucket.take() for _ in range(10)) == 3


def test_limits_default_and_read_from_the_environment() -> None:
    assert load_config(BASE).limits == Limits()
    limits = load_config({**BASE, "GATEWAY_MESSAGE_RATE": "2.5", "GATEWAY_MESSAGE_BURST": "5",
                          "GATEWAY_MAX_SOCKETS_PER_SUBJECT": "3", "GATEWAY_MAX_SUBSCRIPTIONS": "7",
                          "GATEWAY_MAX_FRAME_BYTES": "4096", "GATEWAY_MAX_VIOLATIONS": "4",
                          "GATEWAY_LEDGER_TTL_SECONDS": "6"}).limits
    assert limits == Limits(2.5, 5, 3, 7, 4096, 4, 6.0)


@pytest.mark.parametrize(("name", "value", "fix"), [
    ("GATEWAY_MESSAGE_RATE", "fast", "frames per second"),
    ("GATEWAY_MESSAGE_RATE", "0", "from 0.1 to 100000"),
    ("GATEWAY_MESSAGE_BURST", "0", "whole number from 1"),
    ("GATEWAY_MAX_SOCKETS_PER_SUBJECT", "-1", "whole number from 0"),
    ("GATEWAY_MAX_SUBSCRIPTIONS", "1.5", "whole number"),
    ("GATEWAY_MAX_FRAME_BYTES", "100", "from 1024"),
    ("GATEWAY_MAX_VIOLATIONS", "x", "whole number"),
    ("GATEWAY_LEDGER_TTL_SECONDS", "0", "from 1 to 3600"),
])
def test_bad_limits_name_the_variable_and_the_fix(name: str, value: str, fix: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config({**BASE, name: value})
    assert name in str(refused.value) and fix in str(refused.value)
