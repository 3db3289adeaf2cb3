"""
``PROGRESS_MIN_DELTA`` was renamed ``PROGRESS_MIN_DELTA_PCT``; the old name works one more release, with a warning.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.any_database

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
PRINT_SETTING = "from django.conf import settings; print(settings.PROGRESS_MIN_DELTA_PCT)"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PROGRESS_MIN_DELTA")}
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_old_name_still_sets_the_threshold_and_the_check_asks_for_the_rename():
    assert manage("shell", "-c", PRINT_SETTING, PROGRESS_MIN_DELTA="5").stdout.splitlines()[-1] == "5.0"
    assert "progress.W001" in manage("check", PROGRESS_MIN_DELTA="5").stderr


def test_the_new_name_wins_and_alone_raises_no_warning():
    assert (
        manage("shell", "-c", PRINT_SETTING, PROGRESS_MIN_DELTA="5", PROGRESS_MIN_DELTA_PCT="2").stdout.splitlines()[-1]
        == "2.0"
    )
    checked = manage("check", PROGRESS_MIN_DELTA_PCT="2")
    assert "progress.W001" not in checked.stdout + checked.stderr
