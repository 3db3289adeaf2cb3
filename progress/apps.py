from django.apps import AppConfig


class ProgressConfig(AppConfig):
    """Batch-task progress (seed 001); models and handlers arrive with issue 5."""

    name = "progress"
