from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time core"

    def ready(self):
        from . import checks  # noqa: F401  registers system checks
