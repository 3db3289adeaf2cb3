"""System checks of the progress app (``manage.py check``)."""

import os

from django.core.checks import Warning, register


@register()
def check_renamed_settings(app_configs, **kwargs):
    """
    progress.W001: the environment still sets ``PROGRESS_MIN_DELTA``, renamed ``PROGRESS_MIN_DELTA_PCT`` (its unit).
    """
    if "PROGRESS_MIN_DELTA" not in os.environ:
        return []
    return [
        Warning(
            "PROGRESS_MIN_DELTA is renamed PROGRESS_MIN_DELTA_PCT; the old name is read until the next release.",
            hint="Rename the variable in the environment or .env (a PROGRESS_MIN_DELTA_PCT beside it wins).",
            id="progress.W001",
        )
    ]
