from types import ModuleType

from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Websocket gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: ModuleType | None) -> None:
        super().__init__(app_name, app_module)
        # Before any app's ready() (the admin's imports ours): a host's GATEWAY dict becomes
        # the validated, frozen config, so a bad value stops startup naming the key.
        from gateway.conf.apply import apply_gateway_setting

        apply_gateway_setting()

    def ready(self) -> None:
        from gateway.grants import store  # noqa: F401  (grant-change handlers)
        from gateway.login import known, signals  # noqa: F401  (login and logout handlers)
        from gateway.observe.audit import start_audit_writer

        start_audit_writer()
