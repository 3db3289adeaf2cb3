"""
The settings of the test run (pytest.ini): the project's, plus realtime's own test app
(realtime/tests/testapp), which the core's tests use instead of a domain app. The servers the
end-to-end tests start run on ``config.settings`` (tests/servers.py) and never load it.
"""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "realtime.tests.testapp"]  # noqa: F405
