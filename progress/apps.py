from django.apps import AppConfig
from django.conf import settings

from realtime import periodic


class ProgressConfig(AppConfig):
    """Batch tasks and their live progress (seed 001)."""

    name = "progress"

    def ready(self):
        from . import checks, handlers, lifecycle  # noqa: F401  register the system checks and the task.* frame handlers

        # Reads never write: the tasks whose worker died are failed by this sweep, in every server process.
        periodic.register(
            "progress.fail_abandoned_tasks", lifecycle.fail_abandoned_tasks, interval_s=lambda: settings.TASK_SWEEP_S
        )
