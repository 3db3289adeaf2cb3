"""The single-process notice and system check for the in-memory channel layer."""

import logging

from django.core.checks import run_checks

from realtime.checks import log_channel_layer_mode

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {"default": {"BACKEND": "realtime.delivery.layers.RedisChannelLayer", "CONFIG": {"hosts": ["redis://x"]}}}


def test_server_start_says_in_memory_layer_is_single_process(settings, caplog):
    settings.CHANNEL_LAYERS = IN_MEMORY
    with caplog.at_level(logging.WARNING, logger="realtime"):
        log_channel_layer_mode()
    assert "single-process only" in caplog.text


def test_no_notice_with_redis(settings, caplog):
    settings.CHANNEL_LAYERS = REDIS
    with caplog.at_level(logging.INFO, logger="realtime"):
        log_channel_layer_mode()
    assert caplog.text == ""


def test_check_warns_when_debug_is_off_on_the_in_memory_layer(settings):
    settings.CHANNEL_LAYERS, settings.DEBUG = IN_MEMORY, False
    assert "realtime.W001" in [message.id for message in run_checks()]
    settings.CHANNEL_LAYERS = REDIS
    assert "realtime.W001" not in [message.id for message in run_checks()]


def test_an_unknown_realtime_key_is_an_error_naming_the_closest_setting(settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 10}
    errors = [message for message in run_checks() if message.id == "realtime.E001"]
    assert [(error.msg, error.hint) for error in errors] == [
        ("Unknown REALTIME setting 'HEARTBEAT_SECONDS'.", "Did you mean 'HEARTBEAT_S'?")
    ]
    settings.REALTIME = {key: value for key, value in settings.REALTIME.items() if key != "HEARTBEAT_SECONDS"}
    assert "realtime.E001" not in [message.id for message in run_checks()]


def test_websocket_allowed_origins_must_be_full_origins(settings):
    bad = ["app.example.com", "https://app.example.com/", "https://app.example.com:port", "ftp://app.example.com"]
    settings.REALTIME = {**settings.REALTIME, "ALLOWED_ORIGINS": ["https://app.example.com:8443", *bad]}
    errors = [message for message in run_checks() if message.id == "realtime.E004"]
    assert [error.msg for error in errors] == [
        f"REALTIME['ALLOWED_ORIGINS'] entry {o!r} is not an origin." for o in bad
    ]
