from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Websocket gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from gateway.grants import store  # noqa: F401  (grant-change handlers)
        from gateway.login import known, signals  # noqa: F401  (login and logout handlers)
        from gateway.observe.audit import start_audit_writer

        start_audit_writer()
