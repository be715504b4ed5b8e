"""The ``gateway-staff`` group: what identity-provider staff may do in the admin.

Members (``GATEWAY_STAFF_GROUPS``, assigned and removed at each login by
``gateway.login.staff``) may manage channels and grants, read the grant change log, see
live connections, disconnect sockets and check access. They get no permission on users,
groups, sessions or identities. Superusers (``GATEWAY_ADMIN_GROUPS``) have every permission.
"""

from typing import Any

from django.db import migrations

STAFF_GROUP = "gateway-staff"  # gateway.login.staff recreates it if it goes missing
STAFF_PERMISSIONS = {
    "channel": ["view", "add", "change", "delete"],
    "grant": ["view", "add", "change", "delete", "view_live_sockets", "disconnect_sockets",
              "check_access"],
    "grantchange": ["view"],
}


def _codename(model: str, action: str) -> str:
    return f"{action}_{model}" if action in {"view", "add", "change", "delete"} else action


def create_staff_group(apps: Any, schema_editor: Any) -> None:
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes

    config = apps.get_app_config("gateway")
    config.models_module = True  # permissions are otherwise created only after every migration
    create_contenttypes(config, apps=apps, verbosity=0)
    create_permissions(config, apps=apps, verbosity=0)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.get_or_create(name=STAFF_GROUP)
    codenames = [_codename(model, action) for model, actions in STAFF_PERMISSIONS.items()
                 for action in actions]
    group.permissions.set(permission_model.objects.filter(content_type__app_label="gateway",
                                                          codename__in=codenames))


def remove_staff_group(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name=STAFF_GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("gateway", "0005_wsticket_principal"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="grant",
            options={
                "ordering": ["target", "issuer", "claim", "value"],
                "permissions": [
                    ("view_live_sockets", "Can see live connections"),
                    ("disconnect_sockets", "Can disconnect a subject's sockets"),
                    ("check_access", "Can check what a user or claims may access"),
                ],
            },
        ),
        migrations.RunPython(create_staff_group, remove_staff_group),
    ]
