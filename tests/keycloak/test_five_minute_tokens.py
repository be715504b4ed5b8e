"""Issue 20 point 4 against Keycloak: 5-minute access tokens at the shipped defaults.

The twin of ``test_defaults.py`` (60 s tokens) for the other lifespan companies set, and of
the 300 s site in ``tests/e2e/test_defaults.py``. One gateway with every lifetime knob at its
default, a client whose tokens live 300 s; the watch (``watch.py``) runs 265 s beside the
rest of the tier, and these tests read what it saw. The notice leads expiry by
min(60, 300 / 6) = 50 s, so it is due 250 s after a token's issue; windows are wide because
the machines are shared.
"""

from __future__ import annotations

import pytest

from tests.keycloak.helpers import access_token_lifespan
from tests.keycloak.launcher import Keycloak
from tests.keycloak.watch import FIVE_MINUTES, LIFESPAN, Outcome, Seen, client_token

LEAD = min(60, LIFESPAN / 6)  # the default notice, capped at 1/6 of the lifetime: 50 s
DUE = LIFESPAN - LEAD  # 250 s after the token's issue
NOTICE_WINDOW = (DUE - 20, DUE + 25)  # seconds since the watch began: loaded machines


@pytest.fixture(scope="module")
def outcome(keycloak: Keycloak) -> Outcome:
    """What the watch saw; ``keycloak`` started it (conftest.py)."""
    return FIVE_MINUTES.result()


def _assert_one_notice_at_the_default_lead(seen: Seen) -> float:
    """Exactly one ``auth.expiring``, about 250 s in and 50 s before its ``expires_at``."""
    notices = seen.of("auth.expiring")
    assert len(notices) == 1, seen.frames
    since_issue, arrived, frame = notices[0]
    assert NOTICE_WINDOW[0] <= since_issue <= NOTICE_WINDOW[1], since_issue
    assert LEAD - 10 <= frame["expires_at"] - arrived <= LEAD + 1, frame["expires_at"] - arrived
    return since_issue


def test_the_watch_saw_five_minute_tokens(outcome: Outcome) -> None:
    assert LIFESPAN - 2 <= outcome.bearer_lifetime <= LIFESPAN, outcome.bearer_lifetime
    assert LIFESPAN - 1 <= outcome.session_lifetime <= LIFESPAN + 40, outcome.session_lifetime
    for seen in outcome.sessions:  # and the refresh brought another one
        _, arrived, refreshed = seen.of("auth.refreshed")[0]
        assert LIFESPAN - 15 <= refreshed["expires_at"] - arrived <= LIFESPAN + 1, refreshed


def test_the_clients_own_lifespan_wins_over_the_realms(keycloak: Keycloak,
                                                       outcome: Outcome) -> None:
    """Why the watch may run beside the modules that shorten the realm's tokens (10 s, 60 s):
    the client's ``access.token.lifespan`` wins. Run after the watch and every other module
    (this module is last), so the realm change here races with nothing."""
    with access_token_lifespan(keycloak, 60):
        # expires_in is rounded down from Keycloak's millisecond clock: 299 happens
        assert LIFESPAN - 2 <= client_token(keycloak)["expires_in"] <= LIFESPAN
        assert 58 <= keycloak.client_credentials("publisher")["expires_in"] <= 60


def test_a_session_is_refreshed_once_at_the_default_notice_and_its_sockets_stay_open(
        outcome: Outcome) -> None:
    for seen in outcome.sessions:
        assert seen.closed is None, f"a session socket closed: {seen.closed}"
        assert seen.kinds("auth.") == ["auth.expiring", "auth.refreshed"], seen.frames
        noticed = _assert_one_notice_at_the_default_lead(seen)
        refreshed_at, _, refreshed = seen.of("auth.refreshed")[0]
        assert noticed <= refreshed_at <= noticed + 15, (noticed, refreshed_at)
        assert refreshed["expires_at"] > seen.of("auth.expiring")[0][2]["expires_at"]
    # at most one refresh per token lifetime for the session: its sockets shared this one
    assert outcome.refreshes_at_keycloak == 1, outcome.refreshes_at_keycloak
    assert outcome.refreshes_at_gateway == 1, outcome.refreshes_at_gateway


def test_a_bearer_socket_hears_one_notice_at_the_default_lead_and_renews_in_band(
        outcome: Outcome) -> None:
    seen = outcome.bearer
    assert seen.closed is None, f"the bearer socket closed: {seen.closed}"
    assert seen.kinds("auth.") == ["auth.expiring"], seen.frames  # nothing before it
    noticed = _assert_one_notice_at_the_default_lead(seen)
    welcomes = seen.of("welcome")  # /ws/ answers the fresh token with a new welcome
    assert len(welcomes) == 2, seen.frames
    renewed_at, arrived, renewed = welcomes[1]
    assert noticed <= renewed_at, (noticed, renewed_at)
    lifetime = renewed["principal"]["expires_at"] - arrived  # the socket now lives 5 more minutes
    assert LIFESPAN - 15 <= lifetime <= LIFESPAN + 1, lifetime
