"""Identity and session bindings. Users are bound to (issuer, subject), never to email."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OidcIdentity(models.Model):
    """One identity-provider account bound to one Django user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="unique_issuer_subject")
        ]
        verbose_name = "OIDC identity"

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"


class SessionBinding(models.Model):
    """Which Django session belongs to which provider session (`sid`) and subject.

    Back-channel logout names a `sid` or a `sub`; this table finds the sessions to end.
    """

    session_key = models.CharField(max_length=40, unique=True)
    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=255)
    sid = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["issuer", "sid"], name="binding_issuer_sid"),
            models.Index(fields=["issuer", "subject"], name="binding_issuer_subject"),
        ]

    def __str__(self) -> str:
        return f"session of {self.subject} (sid={self.sid})"


class WsTicket(models.Model):
    """A one-time websocket ticket: minted by a logged-in POST, redeemed once, within 30 s.

    Only a hash of the ticket is stored; the ticket is bound to the minting session.
    """

    ticket_hash = models.CharField(max_length=64, unique=True)
    session_key = models.CharField(max_length=40)
    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=255)
    expires_at = models.FloatField()

    def __str__(self) -> str:
        return f"ticket for {self.subject}"
