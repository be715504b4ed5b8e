"""Grant changes show their effect before they are saved (issue 22): each change records the
preview's counts and its batch, each process records what it revoked (GrantOutcome), and each
browser login keeps the claims snapshot of its identity (KnownClaims)."""

from __future__ import annotations  # annotations unevaluated: hosts run without django_stubs_ext

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def ID() -> tuple[str, models.BigAutoField[int, int]]:
    return ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                      verbose_name="ID"))


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0007_delete_wsticket"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="grantchange", name="batch",
            field=models.CharField(
                blank=True, db_index=True, max_length=32,
                help_text="changes confirmed together after one preview share it"),
        ),
        migrations.AddField(
            model_name="grantchange", name="preview",
            field=models.JSONField(
                blank=True, null=True,
                help_text="the counts the administrator saw before confirming"),
        ),
        migrations.CreateModel(
            name="GrantOutcome",
            fields=[
                ID(),
                ("version", models.BigIntegerField(db_index=True)),
                ("process", models.CharField(help_text="host:pid", max_length=200)),
                ("rechecked", models.IntegerField(default=0)),
                ("revoked_sockets", models.IntegerField(default=0)),
                ("revoked_channels", models.IntegerField(default=0)),
                ("at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["version", "process"],
                "constraints": [models.UniqueConstraint(
                    fields=("version", "process"), name="unique_outcome_version_process")],
            },
        ),
        migrations.CreateModel(
            name="KnownClaims",
            fields=[
                ID(),
                ("issuer", models.CharField(max_length=512)),
                ("subject", models.CharField(max_length=255)),
                ("username", models.CharField(blank=True, max_length=150)),
                ("snapshot", models.JSONField(
                    help_text="oidc.types.ClaimsSnapshot of the last login")),
                ("groups", models.TextField(blank=True)),
                ("roles", models.TextField(blank=True)),
                ("seen_at", models.DateTimeField(db_index=True)),
                ("user", models.ForeignKey(
                    blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "known user's claims",
                "verbose_name_plural": "known users' claims",
                "constraints": [models.UniqueConstraint(
                    fields=("issuer", "subject"), name="unique_known_issuer_subject")],
            },
        ),
    ]
