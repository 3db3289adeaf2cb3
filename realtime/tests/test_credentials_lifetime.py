"""Credentials on open connections: token expiry, auth.refresh, re-checks, admin disconnects."""

import asyncio
import datetime

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from rest_framework_simplejwt.tokens import AccessToken

from conftest import access_token
from realtime.delivery.process import get_process
from realtime.delivery.revalidation import close_revoked_sessions
from realtime.errors import CloseCode, ErrorCode, Forbidden
from realtime.publish import close_user_connections

pytestmark = pytest.mark.any_database


def short_token(user, seconds: float) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=datetime.timedelta(seconds=seconds))
    return str(token)


async def test_expired_token_closes_the_connection_with_4401(connect, alice):
    client = await connect(token=short_token(alice, 2))  # exp is in whole seconds: 1 to 2 s from now
    welcome = await client.receive_type("welcome")
    assert welcome["data"]["token_expires_at"] > welcome["data"]["server_time"]
    error = await client.receive(timeout=4)
    assert error["error"]["code"] == ErrorCode.UNAUTHORIZED
    assert "expired" in error["error"]["message"]
    assert await client.receive_close() == CloseCode.UNAUTHORIZED


async def test_auth_refresh_extends_the_connection(connect, alice):
    client = await connect(token=short_token(alice, 1))
    await client.receive_type("welcome")
    fresh = access_token(alice)
    reply = await client.request("auth.refresh", {"token": fresh})
    assert reply["data"]["expires_at"] == AccessToken(fresh)["exp"] * 1000
    await asyncio.sleep(1.2)  # past the first token's expiry (exp is in whole seconds)
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"


async def test_auth_refresh_refuses_bad_and_foreign_tokens_and_keeps_the_connection(connect, alice, bob):
    client = await connect(user=alice)
    assert (await client.request("auth.refresh", {"token": "forged"}, ref="a"))["error"][
        "code"
    ] == ErrorCode.UNAUTHORIZED
    foreign = await client.request("auth.refresh", {"token": access_token(bob)}, ref="b")
    assert foreign["error"]["code"] == ErrorCode.FORBIDDEN
    assert (await client.request("auth.refresh", {}, ref="c"))["error"]["code"] == ErrorCode.INVALID
    await client.send({"type": "ping"})
    assert (await client.receive())["type"] == "pong"


async def test_deactivated_user_is_closed_at_the_recheck(connect, alice, bob):
    alice_client = await connect(user=alice)
    bob_client = await connect(user=bob)
    alice.is_active = False
    await alice.asave(update_fields=["is_active"])
    await close_revoked_sessions(await get_process())
    error = await alice_client.receive()
    assert error["error"] == {"code": "unauthorized", "message": "User is inactive"}
    assert await alice_client.receive_close() == CloseCode.UNAUTHORIZED
    await bob_client.assert_nothing()


async def test_logged_out_session_is_closed_at_the_recheck(connect, alice, session_cookie):
    cookie = await session_cookie(alice)
    client = await connect(headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    await client.receive_type("welcome")
    await sync_to_async(Session.objects.all().delete)()  # what logout does to the session
    await close_revoked_sessions(await get_process())
    assert "Session ended" in (await client.receive())["error"]["message"]
    assert await client.receive_close() == CloseCode.UNAUTHORIZED


async def test_admin_disconnect_closes_every_connection_of_the_user_with_4403(connect, alice, bob):
    first, second = await connect(user=alice), await connect(user=alice)
    bystander = await connect(user=bob)
    await sync_to_async(close_user_connections)(alice.pk, CloseCode.DISCONNECTED, Forbidden("Disconnected by admin"))
    for client in (first, second):
        assert (await client.receive())["error"] == {"code": "forbidden", "message": "Disconnected by admin"}
        assert await client.receive_close() == CloseCode.DISCONNECTED
    await bystander.assert_nothing()
