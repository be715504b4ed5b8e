"""Login binds the Django session to the provider session; any logout closes its sockets."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from gateway.login.session_cache import announce_sync
from gateway.login.sessions import AUTH_KEY
from gateway.models import SessionBinding
from gateway.sockets.addressing import revoke, session_group


@receiver(user_logged_in)
def bind_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    auth = request.session.get(AUTH_KEY)
    if not isinstance(auth, dict) or request.session.session_key is None:
        return
    claims = auth["claims"]
    SessionBinding.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={"issuer": claims["issuer"], "subject": claims["subject"], "sid": claims.get("sid")},
    )


def close_session_sockets(session_key: str, reason: str) -> None:
    """Tell every gateway process to close the sockets of this Django session."""
    layer = get_channel_layer()
    if layer is not None:
        group = session_group(session_key)
        async_to_sync(layer.group_send)(group, revoke(group, reason))


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = request.session.session_key if request is not None else None
    if key:
        SessionBinding.objects.filter(session_key=key).delete()
        # Django flushes the session after this signal; delete it first, so no process
        # can read it back into its session cache once the broadcast is out.
        request.session.delete(key)
        announce_sync([key], "logged_out")
        close_session_sockets(key, "logged_out")
