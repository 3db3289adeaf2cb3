"""The command-line client (``manage.py chat_client``) against Daphne, as a new user runs it."""

import pytest

from chat.models import Message
from tests.e2e.helpers import ChatClient, wait_until

pytestmark = [pytest.mark.any_database, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_two_terminal_clients_chat_through_two_processes(daphnes, conversation):
    server_a, server_b = daphnes
    alice = ChatClient(server_a.http, "alice", "alice-pass", conversation.pk)
    bob = ChatClient(server_b.http, "bob", "bob-pass", conversation.pk)
    try:
        alice.wait_for("-- joined conversation")
        bob.wait_for("-- joined conversation")
        alice.type("hello bob")
        assert bob.wait_for("hello bob") == "[1] alice: hello bob"
        bob.type("hi alice")
        assert alice.wait_for("hi alice") == "[2] bob: hi alice"
        assert alice.quit() == 0
        assert bob.quit() == 0
    finally:
        for client in (alice, bob):
            client.proc.kill()
            client.proc.wait()
    assert list(Message.objects.order_by("seq").values_list("content", flat=True)) == ["hello bob", "hi alice"]


def test_client_prints_the_backlog_it_missed_when_it_starts(daphnes, conversation, alice):
    from chat import services

    services.send_message(sender=alice, conversation=conversation, content="while you were away")
    bob = ChatClient(daphnes[0].http, "bob", "bob-pass", conversation.pk)
    try:
        assert bob.wait_for("while you were away") == "[1] alice: while you were away"
        assert bob.quit() == 0
    finally:
        bob.proc.kill()
        bob.proc.wait()


def test_wrong_password_is_a_clear_error(daphnes, conversation):
    client = ChatClient(daphnes[0].http, "alice", "wrong", conversation.pk)
    assert "Login refused (401)" in client.wait_for("Login refused")
    assert client.quit() != 0


def test_an_unknown_conversation_is_a_clear_error_and_a_normal_close(daphnes, conversation, alice):
    server = daphnes[0]
    client = ChatClient(server.http, "alice", "alice-pass", conversation.pk + 1000)
    assert "not_found: Conversation not found" in client.wait_for("Cannot join")
    assert client.quit() != 0

    # The client closed normally: the server does not log its disconnect as an internal error (1011).
    # Only this test's user: the session's servers log earlier tests' connections too.
    def alices_disconnects():
        mine = f" user={alice.pk} code="
        return [line for line in server.output().splitlines() if "disconnect conn=" in line and mine in line]

    wait_until(alices_disconnects, timeout=10, what="the server logging the disconnect")
    logged = alices_disconnects()
    assert all("code=1000" in line for line in logged), logged
