from __future__ import annotations

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import gateway.models


def ID() -> tuple[str, models.BigAutoField[int, int]]:
    return ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                      verbose_name="ID"))


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0003_seenlogouttoken"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Channel",
            fields=[
                ID(),
                ("name", models.CharField(
                    help_text="a-z 0-9 . - _ ; segments separated by '.'; lowercased",
                    max_length=64, unique=True,
                    validators=[gateway.models._validate_channel_name])),
                ("description", models.TextField(blank=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.CreateModel(
            name="GrantVersion",
            fields=[ID(), ("version", models.BigIntegerField(default=0))],
        ),
        migrations.CreateModel(
            name="Grant",
            fields=[
                ID(),
                ("issuer", models.CharField(help_text="exact issuer URL (the token's iss)",
                                            max_length=512)),
                ("claim", models.CharField(
                    default="groups", help_text="groups, roles, or a dotted claim path",
                    max_length=200, validators=[gateway.models._validate_claim_path])),
                ("value", models.CharField(help_text="claim value, e.g. engineering or /eng",
                                           max_length=255)),
                ("target", models.CharField(
                    help_text="a channel name, or a prefix pattern like alerts.*",
                    max_length=64, validators=[gateway.models._validate_target])),
                ("subscribe", models.BooleanField(default=True)),
                ("publish", models.BooleanField(default=False)),
                ("presence", models.BooleanField(default=False)),
                ("note", models.CharField(blank=True, max_length=255)),
            ],
            options={
                "ordering": ["target", "issuer", "claim", "value"],
                "constraints": [models.UniqueConstraint(
                    fields=("issuer", "claim", "value", "target"),
                    name="unique_grant_claim_target")],
            },
        ),
        migrations.CreateModel(
            name="GrantChange",
            fields=[
                ID(),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("username", models.CharField(
                    blank=True, help_text="kept if the user is later deleted; blank if not admin",
                    max_length=150)),
                ("action", models.CharField(choices=[("create", "create"), ("update", "update"),
                                                     ("delete", "delete")], max_length=10)),
                ("grant_id", models.BigIntegerField(db_index=True)),
                ("before", models.JSONField(blank=True, null=True)),
                ("after", models.JSONField(blank=True, null=True)),
                ("version", models.BigIntegerField(help_text="grant version after this change")),
                ("user", models.ForeignKey(
                    blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                    related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-at", "-id"]},
        ),
    ]
