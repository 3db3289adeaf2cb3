"""
What an open connection keeps under Daphne (realtime/servers/daphne/application_queue.py and
protocol_state.py): the same behaviour as Daphne's and Autobahn's own, with less per connection.
"""

import asyncio

import pytest

from realtime.servers.daphne.application_queue import ApplicationQueue
from realtime.servers.daphne.protocol_state import PER_INSTANCE_OPTIONS, SendQueue, _options_class

pytestmark = pytest.mark.any_database


async def test_the_queue_hands_messages_over_in_order():
    queue = ApplicationQueue()
    assert queue.empty() and queue.qsize() == 0
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert queue.qsize() == 2
    assert await queue.get() == "a"
    assert queue.get_nowait() == "b"
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_waiting_gets_are_served_oldest_first():
    queue = ApplicationQueue()
    first, second = asyncio.create_task(queue.get()), asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # both wait
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await asyncio.wait_for(asyncio.gather(first, second), 1) == [1, 2]
    assert queue.empty()


async def test_a_message_woken_for_a_cancelled_get_goes_to_the_next_one():
    queue = ApplicationQueue()
    cancelled, waiting = asyncio.create_task(queue.get()), asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")  # wakes the first get...
    cancelled.cancel()  # ...which is cancelled before it runs: the message is not lost
    assert await asyncio.wait_for(waiting, 1) == "only"
    assert cancelled.cancelled()
    assert queue.empty()


async def test_a_cancelled_get_leaves_the_queue_as_it_was():
    queue = ApplicationQueue()
    get = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    get.cancel()
    with pytest.raises(asyncio.CancelledError):
        await get
    queue.put_nowait("later")
    assert await asyncio.wait_for(queue.get(), 1) == "later"


def test_autobahns_send_queue_keeps_its_order():
    queue = SendQueue()
    queue.append((b"a", True))
    queue.append((b"b", False))
    assert len(queue) == 2 and queue.popleft() == (b"a", True) and queue.popleft() == (b"b", False)
    assert not queue


def test_protocols_take_the_factorys_options_of_the_moment_they_connect():
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    factory = WebSocketFactory(server_class=None, server="test")
    factory.setProtocolOptions(autoPingInterval=7, maxFramePayloadSize=1234)
    cls = _options_class(factory)
    assert issubclass(cls, WebSocketProtocol) and cls is not WebSocketProtocol
    assert _options_class(factory) is cls  # options unchanged: the same class
    # Every option Autobahn would copy onto the instance is found on the class, with its value.
    for name in WebSocketProtocol.CONFIG_ATTRS:
        if name not in PER_INSTANCE_OPTIONS:
            assert getattr(cls, name) == getattr(factory, name), name
    # A function option is the option, not a method of the protocol.
    protocol = cls()
    assert protocol.perMessageCompressionAccept is factory.perMessageCompressionAccept
    assert protocol.autoPingInterval == 7 and protocol.maxFramePayloadSize == 1234

    factory.setProtocolOptions(autoPingInterval=9)
    newer = _options_class(factory)
    assert newer is not cls and newer().autoPingInterval == 9
    assert protocol.autoPingInterval == 7  # an open connection keeps its options, as with the copy


def test_a_connecting_protocol_copies_no_option_and_leaves_nagle_as_daphne_did():
    from daphne.ws_protocol import WebSocketFactory
    from twisted.internet.testing import StringTransport

    class Transport(StringTransport):
        nodelay_calls = ()

        def setTcpNoDelay(self, enabled):  # noqa: N802 (Twisted's name)
            self.nodelay_calls += (enabled,)

    factory = WebSocketFactory(server_class=None, server="test")
    factory.setProtocolOptions(openHandshakeTimeout=0)  # no timer on the reactor
    protocol = factory.buildProtocol(None)
    transport = Transport()
    protocol.makeConnection(transport)
    copied = set(vars(protocol)) & set(protocol.CONFIG_ATTRS)
    assert copied == set(PER_INSTANCE_OPTIONS)
    # Autobahn sets TCP_NODELAY before it copies tcpNoDelay: under Daphne it never has.
    assert transport.nodelay_calls == ()
    assert isinstance(protocol.send_queue, SendQueue) and not protocol.send_queue


async def test_the_routers_hand_over_the_routed_application():
    from django.urls import path, re_path

    from realtime.consumer import ProtocolTypeRouter, URLRouter

    seen = []

    async def app(scope, receive, send):
        seen.append(scope)

    router = ProtocolTypeRouter({"websocket": URLRouter([path("ws/", app), re_path(r"^rooms/(?P<room>\w+)$", app)])})
    handed_over = router({"type": "websocket", "path": "/rooms/lobby"}, None, None)
    assert handed_over.cr_code is app.__code__  # the route's own coroutine: no router frame in between
    await handed_over
    assert seen[-1]["url_route"] == {"args": (), "kwargs": {"room": "lobby"}}
    await router({"type": "websocket", "path": "/ws/"}, None, None)
    assert seen[-1]["path_remaining"] == ""
    with pytest.raises(ValueError, match="No route found for path 'nowhere'"):
        router({"type": "websocket", "path": "/nowhere"}, None, None)
    with pytest.raises(ValueError, match="No application configured for scope type 'http'"):
        router({"type": "http", "path": "/ws/"}, None, None)
