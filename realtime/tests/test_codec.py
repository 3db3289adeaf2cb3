"""A compatibility endpoint's members get each event in their protocol, translated once per event."""

import orjson
import pytest

from realtime.codec import NATIVE, AdapterCodec
from realtime.delivery.hub import Hub
from realtime.delivery.stats import ProcessStats
from realtime.envelope import event_frame

pytestmark = pytest.mark.any_database


class Flat(AdapterCodec):
    """A toy protocol: events as ``{"kind", ...data}``; it has no ``typing`` frame."""

    name = "flat"

    def __init__(self):
        self.translations = 0

    def event(self, event_type, data):
        self.translations += 1
        return None if event_type == "typing" else orjson.dumps({"kind": event_type, **data}).decode()

    def error(self, code, message, details, ref):
        return orjson.dumps({"kind": "error", "message": message}).decode()


class Broken(AdapterCodec):
    name = "broken"

    def event(self, event_type, data):
        raise ValueError("a bug in an adapter")


class Member:
    held = None
    frame_writer = None

    def __init__(self, name, codec):
        self.connection_id, self.codec, self.sent = name, codec, []

    async def base_send(self, message):
        self.sent.append(orjson.loads(message["text"]))


def hub_of(*members):
    hub = Hub(layer=None, stats=ProcessStats())
    hub.groups["g"] = set(members)
    return hub


async def test_each_member_gets_the_event_in_its_protocol_translated_once():
    flat = Flat()
    native, compat_a, compat_b = Member("n", NATIVE), Member("a", flat), Member("b", flat)
    hub = hub_of(native, compat_a, compat_b)

    await hub.deliver("g", event_frame("chat.message", {"seq": 7}), "chat.message")

    assert native.sent[0]["type"] == "chat.message" and native.sent[0]["data"] == {"seq": 7}
    assert compat_a.sent == compat_b.sent == [{"kind": "chat.message", "seq": 7}]
    assert flat.translations == 1


async def test_an_event_the_protocol_has_no_frame_for_is_not_sent_to_its_members():
    native, compat = Member("n", NATIVE), Member("c", Flat())
    await hub_of(native, compat).deliver("g", event_frame("typing", {"user_id": 1}), "typing")
    assert len(native.sent) == 1 and compat.sent == []


async def test_a_failing_translation_costs_only_its_own_members():
    native, broken, flat = Member("n", NATIVE), Member("x", Broken()), Member("f", Flat())
    await hub_of(native, broken, flat).deliver("g", event_frame("chat.message", {"seq": 1}), "chat.message")
    assert len(native.sent) == 1 and len(flat.sent) == 1 and broken.sent == []


def test_a_server_close_reason_is_translated_too():
    from realtime.envelope import error_frame
    from realtime.errors import GoingAway

    assert orjson.loads(Flat().translate(error_frame(GoingAway()))) == {"kind": "error", "message": GoingAway().message}
    assert NATIVE.translate(error_frame(GoingAway())) == error_frame(GoingAway())


def test_as_asgi_gives_each_connection_the_endpoint_codec():
    from realtime.consumer import RealtimeConsumer

    flat = Flat()
    app = RealtimeConsumer.as_asgi(codec=flat)
    assert app.consumer_class(**app.consumer_initkwargs).codec is flat
    assert RealtimeConsumer().codec is NATIVE
