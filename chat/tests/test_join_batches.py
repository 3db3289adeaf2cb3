"""
``chat.join`` as a batch handler (chat.handlers.join, selectors.join_replies): the joins of the
connections whose frames arrive together are read together, and each is answered on its own (its
ack, ``not_found`` or ``invalid``) and subscribes its own connection; resume pages are exact when
several joins of one conversation resume from different seqs, when messages were deleted (holes in
the seqs), and when a page is cut by the byte budget.
"""

import pytest
from asgiref.sync import sync_to_async

from chat import selectors, services
from chat.events import viewers_group
from chat.models import Conversation, Message
from chat.tests.batching import HeldFirstBatch, answer, group
from realtime.delivery.process import get_process
from realtime.errors import NotFound


def messages_in(conversation, sender, count: int, content: str = "m") -> None:
    for n in range(count):
        services.send_message(sender=sender, conversation=conversation, content=f"{content}{n + 1}")


def request(user, conversation_id: int, after_seq: int | None = None, limit: int = 100) -> selectors.JoinRequest:
    return selectors.JoinRequest(user, conversation_id, after_seq, limit)


def page(reply: dict) -> tuple[list[int], bool]:
    return [m["seq"] for m in reply["messages"]], reply["has_more"]


@pytest.fixture
def staff(make_user):
    return make_user("agent", is_staff=True)


def test_joins_of_one_batch_are_answered_each_in_three_queries(alice, bob, carol, staff, django_assert_num_queries):
    team, other = group("team", alice, bob), group("other", bob, carol)
    support = group("support", carol)
    Conversation.objects.filter(pk=support.pk).update(kind=Conversation.Kind.SUPPORT, support_user=carol)
    messages_in(team, bob, 5)
    messages_in(other, carol, 2)
    requests = [
        request(alice, team.pk, after_seq=0, limit=2),
        request(bob, team.pk, after_seq=1),  # overlaps alice's range: read once
        request(carol, team.pk, after_seq=0),  # not a member
        request(bob, other.pk),  # no resume
        request(staff, support.pk, after_seq=0),  # staff may open any support conversation
        request(alice, support.pk),  # not staff, not a member
        request(alice, 987654, after_seq=0),  # no such conversation
        request(alice, team.pk, after_seq=0, limit=2),  # the same join twice
    ]
    with django_assert_num_queries(3):
        replies = selectors.join_replies(requests)

    alice_first, bob_team, carol_team, bob_other, staff_support, alice_support, missing, alice_again = replies
    assert page(alice_first) == ([1, 2], True)
    assert page(bob_team) == ([2, 3, 4, 5], False)
    assert page(alice_again) == page(alice_first)
    for refused in (carol_team, alice_support, missing):
        assert isinstance(refused, NotFound) and str(refused) == "Conversation not found"
    assert bob_other["conversation"]["id"] == other.pk and "messages" not in bob_other
    assert [m["user_id"] for m in bob_other["conversation"]["members"]] == sorted([bob.pk, carol.pk])
    assert bob_other["read_positions"] == [{"user_id": bob.pk, "seq": 0}, {"user_id": carol.pk, "seq": 2}]
    assert staff_support["conversation"]["kind"] == "support" and page(staff_support) == ([], False)
    assert staff_support["read_positions"] == [{"user_id": carol.pk, "seq": 0}, {"user_id": None, "seq": 0}]
    # The same reply as a join of its own.
    (alone,) = selectors.join_replies([request(bob, team.pk, after_seq=1)])
    assert alone == bob_team


def test_resume_pages_skip_deleted_messages(alice, bob, django_assert_num_queries):
    team = group("team", alice, bob)
    messages_in(team, bob, 6)
    Message.objects.filter(conversation=team, seq=3).delete()  # as deleting its sender's account does
    resumes = [(0, 2), (2, 2), (0, 10), (3, 1), (5, 10)]
    # The three queries, and one more for each range with the hole and short of last_seq: the first three.
    with django_assert_num_queries(3 + 3):
        replies = selectors.join_replies([request(alice, team.pk, after, limit) for after, limit in resumes])
    assert [page(reply) for reply in replies] == [
        ([1, 2], True),
        ([4, 5], True),
        ([1, 2, 4, 5, 6], False),
        ([4], True),
        ([6], False),
    ]
    Message.objects.filter(conversation=team, seq=6).delete()  # the newest: last_seq stays 6
    (reply,) = selectors.join_replies([request(alice, team.pk, after_seq=5)])
    assert page(reply) == ([], False)


def test_resumes_that_are_up_to_date_read_no_messages(alice, bob, django_assert_num_queries):
    team = group("team", alice, bob)
    messages_in(team, bob, 2)
    with django_assert_num_queries(2):  # the conversation, its members
        replies = selectors.join_replies([request(alice, team.pk, after_seq=2), request(bob, team.pk, after_seq=5)])
    assert [page(reply) for reply in replies] == [([], False), ([], False)]


def test_resume_after_the_largest_seq_is_an_empty_page(alice, bob):
    team = group("team", alice, bob)
    messages_in(team, bob, 1)
    (reply,) = selectors.join_replies([request(alice, team.pk, after_seq=2**63 - 1)])
    assert page(reply) == ([], False)


def test_each_page_of_a_batch_is_cut_to_the_byte_budget(alice, bob, settings):
    team = group("team", alice, bob)
    messages_in(team, bob, 3, "y" * 3000)
    settings.REALTIME = {**getattr(settings, "REALTIME", {}), "LIST_PAGE_MAX_BYTES": 5000}
    cut, fits = selectors.join_replies([request(alice, team.pk, after_seq=0), request(bob, team.pk, after_seq=2)])
    assert page(cut) == ([1], True)  # two 3 KB messages and the summary do not fit in 5,000 bytes
    assert page(fits) == ([3], False)


async def test_joins_arriving_together_are_one_call_each_answered_and_subscribed(
    connect, alice, bob, carol, monkeypatch
):
    """
    While a first join is held in the database, five connections join: one batch, one call of
    ``join_replies`` for the four valid ones; each connection gets its own reply, and follows the
    conversation's viewers only if its join was acked. To make them arrive together whatever the
    machine's speed, the first waits until the five are queued (``GroupCommit.submit`` counts them).
    """
    team, pair = await sync_to_async(lambda: (group("team", alice, bob), group("pair", alice, carol)))()
    await sync_to_async(messages_in)(team, bob, 3)
    batch = HeldFirstBatch(monkeypatch, selectors, "join_replies", calls=6)
    first, alice_tab, bob_tab, carol_tab, carol_pair, blank = [
        await connect(user=user) for user in (alice, alice, bob, carol, carol, carol)
    ]
    plan = {
        alice_tab: {"conversation_id": team.pk, "after_seq": 1},
        bob_tab: {"conversation_id": team.pk, "after_seq": 0, "limit": 2},
        carol_tab: {"conversation_id": team.pk, "after_seq": 0},
        carol_pair: {"conversation_id": pair.pk, "after_seq": 0},
        blank: {"conversation_id": "1"},
    }
    try:
        await first.send({"type": "chat.join", "ref": "first", "data": {"conversation_id": team.pk}})
        await batch.held()
        for client, data in plan.items():
            await client.send({"type": "chat.join", "ref": "j", "data": data})
        await batch.queued()
    finally:
        batch.release()
    replies = {client: await answer(client, "j") for client in plan}
    assert (await answer(first, "first"))["type"] == "ack"

    batches = [[request.conversation_id for request in requests] for requests in batch.batches]
    assert batches[0] == [team.pk]
    assert len(batches) == 2 and sorted(batches[1]) == sorted([team.pk, team.pk, team.pk, pair.pk])  # not the invalid
    assert [m["seq"] for m in replies[alice_tab]["data"]["messages"]] == [2, 3]
    assert [m["seq"] for m in replies[bob_tab]["data"]["messages"]] == [1, 2]
    assert replies[bob_tab]["data"]["has_more"] is True
    assert replies[carol_tab]["error"]["code"] == "not_found"
    assert replies[carol_pair]["data"]["conversation"]["id"] == pair.pk
    assert replies[blank]["error"]["code"] == "invalid"
    assert set(replies[blank]["error"]["details"]) == {"conversation_id"}

    # Typing reaches the connections whose join was acked, and no other.
    await (await connect(user=bob)).request("chat.typing", {"conversation_id": team.pk}, ref="t")
    for viewer in (first, alice_tab, bob_tab):
        assert (await viewer.receive_type("chat.typing"))["data"]["conversation_id"] == team.pk
    for other in (carol_tab, carol_pair, blank):
        await other.assert_nothing()
    hub = (await get_process()).hub
    assert hub.local_members(viewers_group(team.pk)) == 3
    assert hub.local_members(viewers_group(pair.pk)) == 1
