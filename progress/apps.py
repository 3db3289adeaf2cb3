from django.apps import AppConfig


class ProgressConfig(AppConfig):
    """Batch tasks and their live progress (seed 001)."""

    name = "progress"

    def ready(self):
        from . import handlers  # noqa: F401  registers the task.* frame handlers
