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


class SeenLogoutToken(models.Model):
    """Replay memory for logout tokens, shared by every gateway process (BCL 1.0 §2.6)."""

    key = models.CharField(max_length=80, unique=True)
    expires_at = models.FloatField(db_index=True)

    def __str__(self) -> str:
        return self.key


# --- Channels and grants (issue 4). Matching lives in oidc.grants; these rows feed it. ---


def _validate_channel_name(value: str) -> None:
    from django.core.exceptions import ValidationError

    from oidc.channels import InvalidChannel, normalise_channel

    try:
        normalise_channel(value)
    except InvalidChannel as exc:
        raise ValidationError(exc.detail, code=exc.error) from None


def _validate_target(value: str) -> None:
    from django.core.exceptions import ValidationError

    from oidc.channels import InvalidChannel, normalise_pattern

    try:
        normalise_pattern(value)
    except InvalidChannel as exc:
        raise ValidationError(exc.detail, code=exc.error) from None


def _validate_claim_path(value: str) -> None:
    from django.core.exceptions import ValidationError

    if not value or not all(value.split(".")):
        raise ValidationError("use groups, roles or a dotted claim path like realm_access.roles")


class Channel(models.Model):
    """A documented channel. Names are normalised (see oidc.channels) before saving."""

    name = models.CharField(max_length=64, unique=True, validators=[_validate_channel_name],
                            help_text="a-z 0-9 . - _ ; segments separated by '.'; lowercased")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def save(self, *args: object, **kwargs: object) -> None:
        from oidc.channels import normalise_channel

        self.name = normalise_channel(self.name)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.name


class Grant(models.Model):
    """Holders of ``claim`` = ``value`` at ``issuer`` may do the ticked operations on ``target``."""

    issuer = models.CharField(max_length=512, help_text="exact issuer URL (the token's iss)")
    claim = models.CharField(max_length=200, default="groups", validators=[_validate_claim_path],
                             help_text="groups, roles, or a dotted claim path")
    value = models.CharField(max_length=255, help_text="claim value, e.g. engineering or /eng")
    target = models.CharField(max_length=64, validators=[_validate_target],
                              help_text="a channel name, or a prefix pattern like alerts.*")
    subscribe = models.BooleanField(default=True)
    publish = models.BooleanField(default=False)
    presence = models.BooleanField(default=False)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "claim", "value", "target"],
                                    name="unique_grant_claim_target")
        ]
        ordering = ["target", "issuer", "claim", "value"]
        permissions = [  # the admin pages of gateway/oversight/
            ("view_live_sockets", "Can see live connections"),
            ("disconnect_sockets", "Can disconnect a subject's sockets"),
            ("check_access", "Can check what a user or claims may access"),
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        from oidc.channels import normalise_pattern

        self.target = normalise_pattern(self.target)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, object]:
        """Plain JSON of the grant, for the change log."""
        return {"issuer": self.issuer, "claim": self.claim, "value": self.value,
                "target": self.target, "subscribe": self.subscribe, "publish": self.publish,
                "presence": self.presence, "note": self.note}

    def __str__(self) -> str:
        return f"{self.claim}={self.value} -> {self.target}"


class GrantChange(models.Model):
    """Append-only log: who changed which grant, when, from what to what."""

    ACTIONS = [("create", "create"), ("update", "update"), ("delete", "delete")]

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, blank=True,
                                help_text="kept if the user is later deleted; blank if not admin")
    action = models.CharField(max_length=10, choices=ACTIONS)
    grant_id = models.BigIntegerField(db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    version = models.BigIntegerField(help_text="grant version after this change")
    batch = models.CharField(max_length=32, blank=True, db_index=True,
                             help_text="changes confirmed together after one preview share it")
    preview = models.JSONField(null=True, blank=True,
                               help_text="the counts the administrator saw before confirming")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} grant {self.grant_id} by {self.username or 'system'}"


class GrantVersion(models.Model):
    """One row (pk=1): bumped on every grant save or delete, so caches know they are stale."""

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"grant version {self.version}"


class GrantOutcome(models.Model):
    """What one gateway process did when it heard of grant version ``version``: how many of
    its sockets re-checked their subscriptions, and how many dropped some as ``revoked``."""

    version = models.BigIntegerField(db_index=True)
    process = models.CharField(max_length=200, help_text="host:pid")
    rechecked = models.IntegerField(default=0)
    revoked_sockets = models.IntegerField(default=0)
    revoked_channels = models.IntegerField(default=0)
    at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "process"],
                                               name="unique_outcome_version_process")]
        ordering = ["version", "process"]

    def __str__(self) -> str:
        return f"version {self.version} on {self.process}: {self.revoked_sockets} revoked"


class KnownClaims(models.Model):
    """The claims snapshot of each identity's last browser login (what a session socket's
    principal is built from), so a grant change can be previewed for people not connected.

    Bounded: one row per (issuer, subject), a snapshot of at most ``MAX_SNAPSHOT_BYTES``,
    and rows not refreshed by a login for ``KEEP_DAYS`` are deleted at the next login.
    """

    MAX_SNAPSHOT_BYTES = 16 * 1024
    KEEP_DAYS = 30

    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, blank=True)
    snapshot = models.JSONField(help_text="oidc.types.ClaimsSnapshot of the last login")
    # the snapshot's groups and roles again, one a line: most previews need only these, and
    # reading them is far cheaper than decoding 50,000 snapshots (bench/grant_preview.py)
    groups = models.TextField(blank=True)
    roles = models.TextField(blank=True)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"],
                                               name="unique_known_issuer_subject")]
        verbose_name = "known user's claims"
        verbose_name_plural = "known users' claims"

    def __str__(self) -> str:
        return f"claims of {self.username or self.subject} at {self.seen_at:%Y-%m-%d %H:%M}"
