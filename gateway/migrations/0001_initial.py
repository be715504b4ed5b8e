import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="SessionBinding",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("session_key", models.CharField(max_length=40, unique=True)),
                ("issuer", models.CharField(max_length=512)),
                ("subject", models.CharField(max_length=255)),
                ("sid", models.CharField(blank=True, max_length=255, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["issuer", "sid"], name="binding_issuer_sid"),
                    models.Index(fields=["issuer", "subject"], name="binding_issuer_subject"),
                ],
            },
        ),
        migrations.CreateModel(
            name="OidcIdentity",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("issuer", models.CharField(max_length=512)),
                ("subject", models.CharField(max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("last_login_at", models.DateTimeField(auto_now=True)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="oidc_identities",
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "OIDC identity",
                "constraints": [
                    models.UniqueConstraint(fields=("issuer", "subject"),
                                            name="unique_issuer_subject"),
                ],
            },
        ),
    ]
