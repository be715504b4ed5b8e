from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Websocket gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from gateway import grants, signals  # noqa: F401  (connect logout and grant-change handlers)
        from gateway.audit import start_audit_writer

        start_audit_writer()
