from django.apps import AppConfig


class ProgressConfig(AppConfig):
    """Batch tasks and their live progress (seed 001)."""

    name = "progress"

    def ready(self):
        from . import checks, handlers  # noqa: F401  register the system checks and the task.* frame handlers
