"""When a live connection hears that its credential is expiring, and how often a session
may be refreshed: one notice and at most one refresh per credential lifetime.

A credential lives from ``issued_at`` to ``expires_at``. The notice comes ``lead`` seconds
before expiry, where ``lead`` is the configured notice capped at ``NOTICE_SHARE`` of the
lifetime: with 60 s tokens and a 60 s notice the lead is 10 s, so a refreshed token is not
noticed again at once (the refresh storm of issue 20). A refresh therefore starts at most
once every ``(1 - NOTICE_SHARE) * lifetime`` seconds, and never sooner than
``MIN_REFRESH_SPACING`` after the last one of the same session, whatever the provider's
token lifespan.

Pure: the caller passes ``now``.
"""

from __future__ import annotations

__all__ = ["MIN_REFRESH_SPACING", "NOTICE_SHARE", "notice_lead", "notice_time", "refresh_allowed"]

NOTICE_SHARE = 1 / 6  # of a credential's lifetime, at most, goes before its notice
MIN_REFRESH_SPACING = 5.0  # seconds between two refreshes of one session, at least


def notice_lead(issued_at: float | None, expires_at: float, notice: float, *, now: float) -> float:
    """Seconds before ``expires_at`` at which the notice is due. Without ``issued_at``
    (a token without ``iat``), the lifetime is counted from ``now``."""
    start = issued_at if issued_at is not None and issued_at <= now else now
    lifetime = max(0.0, expires_at - start)
    return min(max(0.0, notice), lifetime * NOTICE_SHARE)


def notice_time(issued_at: float | None, expires_at: float, notice: float, *, now: float) -> float:
    """The moment the notice is due (possibly already past: then at once)."""
    return expires_at - notice_lead(issued_at, expires_at, notice, now=now)


def refresh_allowed(last_refresh: float | None, *, now: float) -> bool:
    """Whether a session last refreshed at ``last_refresh`` may be refreshed again."""
    return last_refresh is None or now - last_refresh >= MIN_REFRESH_SPACING
