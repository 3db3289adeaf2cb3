"""The server patches go in only at the versions they were tested with, and the checks say so."""

import functools
import logging

import pytest

from realtime import versions
from realtime.delivery.checks import check_layer_version
from realtime.servers import daphne, writer_for
from realtime.servers.checks import check_server_versions

pytestmark = pytest.mark.any_database


@pytest.fixture
def installed_versions(monkeypatch):
    """Pretend other versions are installed: ``installed_versions(daphne="4.3.0")``."""
    real = versions.version

    def pretend(**found):
        monkeypatch.setattr(versions, "version", lambda name: found.get(name.replace("-", "_"), real(name)))

    return pretend


def test_the_pinned_versions_pass_the_checks():
    assert check_server_versions(None) == []
    assert check_layer_version(None) == []


def test_an_untested_daphne_is_an_error_naming_the_fix(installed_versions):
    installed_versions(daphne="4.3.0")
    [error] = check_server_versions(None)
    assert error.id == "realtime.E002"
    assert "daphne 4.3.0" in error.msg
    assert "daphne==4.2.3" in error.hint and "SERVER_PATCHES" in error.hint


def test_turning_the_patches_off_silences_the_check(installed_versions, settings):
    installed_versions(autobahn="27.1.0")
    settings.REALTIME = {**settings.REALTIME, "SERVER_PATCHES": False}
    assert check_server_versions(None) == []


def test_an_untested_channels_redis_is_an_error(installed_versions, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "realtime.delivery.layers.RedisChannelLayer", "CONFIG": {}}}
    installed_versions(channels_redis="4.4.0")
    [error] = check_layer_version(None)
    assert error.id == "realtime.E003" and "channels-redis==4.3.0" in error.hint


def test_an_untested_daphne_is_left_alone_and_written_through_asgi(installed_versions, monkeypatch, caplog):
    applied = []
    for patch in (
        "allow_rfc6455_close_codes",
        "free_closed_connections",
        "bound_send_buffers",
        "write_eagerly",
        "lean_application_queues",
        "trim_protocol_state",
    ):
        monkeypatch.setattr(daphne, patch, functools.partial(applied.append, patch))
    monkeypatch.setattr(daphne, "_installed", False)
    installed_versions(twisted="27.0.0")

    with caplog.at_level(logging.ERROR, logger="realtime.servers.daphne"):
        assert daphne.install() is False

    assert applied == []
    assert "twisted 27.0.0" in caplog.text
    # Daphne's own send for a connection: no direct writer without the patches.
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    protocol = object.__new__(WebSocketProtocol)
    protocol.maxMessagePayloadSize = protocol.autoFragmentSize = 0
    send = functools.partial(object.__new__(Server).handle_reply, protocol)
    assert writer_for(send) is None
    monkeypatch.setattr(daphne, "_installed", True)
    assert writer_for(send) is not None  # the same send once the patches are in
