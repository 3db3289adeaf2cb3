import json
import os
import shutil

import pytest

from chat.models import Conversation, Membership
from tests.e2e.browser import CHROMIUM_ARGS, Contexts
from tests.servers import Daphne, database_url


@pytest.fixture(autouse=True)
def fast_password_hasher():
    """Daphne checks passwords with the real hashers, so users here get real hashes."""


@pytest.fixture(scope="session")
def daphnes(django_db_setup, tmp_path_factory):
    """Two Daphne processes serving the test database behind one Redis (``REDIS_URL``)."""
    from django.db import connection

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise RuntimeError("End-to-end tests need Redis: set REDIS_URL or run them with `make test`.")
    env = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": redis_url,
        # Every test client connects from 127.0.0.1: the per-IP connection rate is tested on its own.
        "REALTIME_OVERRIDES": json.dumps({"CONNECTIONS_PER_IP_PER_MIN": 10_000, "CONNECTIONS_PER_IP_PER_S": 10_000}),
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
    }
    servers = [Daphne(env), Daphne(env)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def conversation(alice, bob):
    """A group conversation of alice and bob."""
    conversation = Conversation.objects.create(kind=Conversation.Kind.GROUP, title="e2e")
    Membership.objects.bulk_create(
        [Membership(user=alice, conversation=conversation), Membership(user=bob, conversation=conversation)]
    )
    return conversation


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian Chromium per test module, through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if not executable:
        raise RuntimeError("Browser tests need Debian's chromium: run them with `make test`.")
    # Playwright's sync API runs an event loop in this thread, so Django would refuse the tests'
    # ORM calls as "async context"; they are plain sync calls (Django's docs name this case).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def browser(chromium):
    """The module's Chromium for one test (``Contexts``): its contexts are closed after the test."""
    contexts = Contexts(chromium)
    yield contexts
    for context in contexts.opened:
        context.close()
