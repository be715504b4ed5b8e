"""oidc.lifetime: one notice and at most one refresh per credential lifetime (issue 20)."""

from __future__ import annotations

import pytest

from oidc.lifetime import (
    MIN_REFRESH_SPACING,
    NOTICE_SHARE,
    notice_lead,
    notice_time,
    refresh_allowed,
)

NOW = 1_000_000.0


@pytest.mark.parametrize(("lifetime", "notice", "lead"), [
    (60.0, 60.0, 10.0),    # the storm case: a 60 s notice on 60 s tokens
    (300.0, 60.0, 50.0),   # 5 min tokens: the share caps the notice
    (3600.0, 60.0, 60.0),  # long tokens: the configured notice
    (60.0, 4.0, 4.0),
    (60.0, 0.0, 0.0),
])
def test_the_lead_is_the_notice_capped_at_a_share_of_the_lifetime(
        lifetime: float, notice: float, lead: float) -> None:
    assert notice_lead(NOW, NOW + lifetime, notice, now=NOW) == pytest.approx(lead)


@pytest.mark.parametrize("lifetime", [1.0, 10.0, 60.0, 300.0, 3600.0])
@pytest.mark.parametrize("notice", [0.0, 4.0, 60.0, 600.0])
def test_a_refreshed_credential_is_not_noticed_at_once(lifetime: float, notice: float) -> None:
    """The next notice is at least (1 - share) of the new lifetime after a refresh."""
    refreshed_at = NOW
    due = notice_time(refreshed_at, refreshed_at + lifetime, notice, now=refreshed_at)
    assert due - refreshed_at >= (1 - NOTICE_SHARE) * lifetime - 1e-9


def test_the_lifetime_counts_from_the_issue_time_not_from_the_connect() -> None:
    issued = NOW - 40  # a 60 s token met 40 s into its life
    assert notice_time(issued, issued + 60, 60, now=NOW) == pytest.approx(issued + 50)


def test_without_issue_time_or_with_one_in_the_future_the_lifetime_counts_from_now() -> None:
    assert notice_lead(None, NOW + 60, 60, now=NOW) == pytest.approx(10)
    assert notice_lead(NOW + 3600, NOW + 60, 60, now=NOW) == pytest.approx(10)


def test_an_expired_credential_is_noticed_at_once() -> None:
    assert notice_time(NOW - 120, NOW - 60, 60, now=NOW) <= NOW


def test_refresh_spacing() -> None:
    assert refresh_allowed(None, now=NOW)
    assert not refresh_allowed(NOW - MIN_REFRESH_SPACING + 0.1, now=NOW)
    assert refresh_allowed(NOW - MIN_REFRESH_SPACING, now=NOW)
