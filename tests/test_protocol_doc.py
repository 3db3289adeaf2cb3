"""
docs/protocol.md is the contract: every frame type, error code and close code is in it, and every
server event the code sends has a section naming each field of its ``data``.
"""

import ast
import re
from pathlib import Path

import pytest

import chat.handlers
import chat.presence
import chat.services
import progress.events
import progress.lifecycle
import progress.services
import rooms.handlers
import rooms.policy
import rooms.services
import workspaces.services
from chat.models import Conversation, Membership
from conftest import protocol_frame_types
from realtime.context import HandlerContext
from realtime.delivery import resync
from realtime.errors import CloseCode, ErrorCode, Forbidden
from realtime.publish import close_user_connections
from realtime.signals import presence_changed
from realtime.tests.publishes import capture_publishes

PROTOCOL = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()
SECTION_TITLES = set(re.findall(r"^#{2,4} `([a-z_.]+)`", PROTOCOL, flags=re.MULTILINE))

HEADING = re.compile(r"^(#{2,4}) (.+)$", flags=re.MULTILINE)
FRAME_TYPE = re.compile(r"`([a-z_]+(?:\.[a-z_]+)*)`")
# An event type as the apps spell it: "<app area>.<name>".
EVENT_TYPE = re.compile(r"(?:chat|support|presence|workspace|task|room|server)\.[a-z_]+")

# The modules that choose the event types the apps publish (the string literals passed to publish
# and friends; progress.events maps task statuses to their events).
PUBLISHING_MODULES = (
    chat.services,
    chat.handlers,
    chat.presence,
    workspaces.services,
    progress.lifecycle,
    progress.events,
    rooms.services,
    rooms.handlers,
)
# Written by the consumer to its own socket, not published: read off a connection in
# test_frames_the_consumer_writes_match_their_sections.
CONSUMER_WRITTEN = {"welcome", "pong"}
# Client frames the consumer answers itself (the apps register the others).
BUILT_IN_COMMANDS = {"auth", "auth.refresh", "ping"}


def _sections() -> list[tuple[set[str], str, str]]:
    """
    Each ``###``/``####`` section as ``(frame types its heading names, its text, its chapter's
    introduction)``. A section runs to the next heading; the introduction is the ``##`` chapter's
    text before its first subsection (where a shape shared by several events is shown).
    """
    headings = list(HEADING.finditer(PROTOCOL))
    sections, intro = [], ""
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(PROTOCOL)
        text = PROTOCOL[heading.start() : end]
        if len(heading.group(1)) == 2:
            intro = text
        else:
            sections.append((set(FRAME_TYPE.findall(heading.group(2))), text, intro))
    return sections


def documented_fields(frame_type: str) -> set[str] | None:
    """
    The field names (double-quoted keys, as in the doc's example JSON and shapes) that the sections
    whose headings name ``frame_type`` and their chapters' introductions show; None when no heading
    names it.
    """
    texts = [text + intro for types, text, intro in _sections() if frame_type in types]
    if not texts:
        return None
    return set(re.findall(r'"([a-z_]+)"', "".join(texts)))


def documented_types() -> set[str]:
    """Every frame type a section heading names."""
    return set().union(*(types for types, _, _ in _sections()))


def undocumented(frame_type: str, fields) -> list[str] | str:
    """
    The names in ``fields`` that no section of ``frame_type`` shows, sorted (``[]``: all documented);
    ``"no section"`` when no heading names ``frame_type``.
    """
    named = documented_fields(frame_type)
    return "no section" if named is None else sorted(set(fields) - named)


def chapter(title: str) -> str:
    """The text of the ``##`` chapter ``title``, subsections included."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", PROTOCOL, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no chapter {title!r} in docs/protocol.md"
    return match.group(1)


def event_types_in_code() -> set[str]:
    """
    The event types the apps' publishing modules name: string literals shaped like an event type,
    but not the frame types their handlers register (``@handler("chat.read")``). A new event type
    shows up here, so the drive below has to produce it too.
    """
    found = set()
    for module in PUBLISHING_MODULES:
        tree = ast.parse(Path(module.__file__).read_text())
        registrations = {
            id(arg)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for decorator in node.decorator_list
            if isinstance(decorator, ast.Call)
            for arg in decorator.args
        }
        found |= {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and EVENT_TYPE.fullmatch(node.value)
            and id(node) not in registrations
        }
    return found


@pytest.fixture
def published(monkeypatch, django_capture_on_commit_callbacks, make_user, alice, bob, carol):
    """
    Drive the chat, workspace, task and room services (and presence, an admin disconnect and a
    lost publish) through every event they can publish; return what was published (``Publishes``).
    """
    captured = capture_publishes(monkeypatch)
    staff = make_user("agent", is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        _drive_chat(alice, bob, carol, staff)
        _drive_workspaces(alice, bob)
        _drive_tasks(alice)
        _drive_rooms(alice, bob, staff)
        presence_changed.send(sender=None, user_id=alice.pk, online=True, last_seen=None)
        presence_changed.send(sender=None, user_id=alice.pk, online=False, last_seen=1763800000000)
        close_user_connections(bob.pk, CloseCode.DISCONNECTED, Forbidden("Disconnected by an administrator"))
        # A publish the layer refused is announced with the next one: resync {"reason": "publish_failed"}.
        resync.note_lost(["chat.conversation.1"])
        workspaces.services.create_workspace(owner=bob, name="After the loss")
    return captured


def _drive_chat(alice, bob, carol, staff) -> None:
    group = chat.services.create_group(owner=alice, title="Team", member_ids=[bob.pk])
    chat.services.add_member(actor=alice, conversation=group, user=carol, role=Membership.Role.ADMIN)
    chat.services.send_message(sender=alice, conversation=group, content="hi")
    chat.services.send_as(alice, recipient_id=bob.pk, content="hi bob")
    chat.services.mark_read(user=bob, conversation=group, seq=1)
    chat.handlers.typing(HandlerContext(user=bob, connection_id="c-bob"), {"conversation_id": group.pk})
    chat.services.change_role(actor=alice, conversation=group, user_id=carol.pk, role=Membership.Role.MEMBER)
    chat.services.remove_member(actor=alice, conversation=group, user_id=carol.pk)
    support, _ = chat.services.open_support(user=bob)
    chat.services.send_message(sender=bob, conversation=support, content="help")
    chat.services.send_message(sender=staff, conversation=support, content="on it")
    chat.services.send_message(sender=bob, conversation=support, content="thanks")
    chat.services.mark_read(user=staff, conversation=Conversation.objects.get(pk=support.pk), seq=3)
    chat.services.close_support(conversation=support)


def _drive_workspaces(alice, bob) -> None:
    services = workspaces.services
    workspace = services.create_workspace(owner=alice, name="Roadmap", settings={"color": "blue"})
    services.update_workspace(actor=alice, workspace_id=workspace.pk, version=1, changes={"name": "Plan"})
    services.share_workspace(actor=alice, workspace_id=workspace.pk, user_id=bob.pk, role="editor")
    services.reorder_workspaces(user=alice, ids=[workspace.pk])
    services.unshare_workspace(actor=alice, workspace_id=workspace.pk, user_id=bob.pk)
    services.delete_workspace(actor=alice, workspace_id=workspace.pk)


def _drive_tasks(alice) -> None:
    lifecycle, Status = progress.lifecycle, progress.lifecycle.Status
    done, cancelled, failed = (progress.services.create_task(owner=alice, name=name, total=2) for name in "abc")
    for task in (done, cancelled, failed):
        lifecycle.transition(task.pk, Status.RUNNING)
    lifecycle.record_progress(done.pk, current=1, succeeded=1, stage="rendering")
    lifecycle.record_document(done.pk, 0, output_name="a.docx")
    lifecycle.record_document(done.pk, 1, error="The template uses a field the row lacks: city")
    progress.services.request(done.pk, Status.PAUSED)
    progress.services.request(done.pk, Status.RUNNING)
    lifecycle.transition(done.pk, Status.COMPLETED, current=2)
    progress.services.request(cancelled.pk, Status.CANCELLED)
    lifecycle.transition(failed.pk, Status.FAILED, error="The data file cannot be read")


def _drive_rooms(alice, bob, staff) -> None:
    joined = HandlerContext(user=alice, connection_id="c-alice", subscriptions={rooms.policy.room_group("game:1")})
    rooms.handlers.publish(joined, {"room": "game:1", "event": "move", "data": {"x": 1}})
    rooms.services.publish_to_room(room="game:1", event="tick", data=None)
    rooms.services.send_to_user(user_id=bob.pk, event="invoice", data={"id": 1})
    rooms.services.announce(text="Back at 18:00", sender=staff)


def test_every_registered_frame_type_has_a_section():
    missing = [t for t in protocol_frame_types() if t not in SECTION_TITLES]
    assert protocol_frame_types(), "no handlers registered: the apps did not load"
    assert missing == []


def test_built_in_frames_have_sections():
    assert {"ping", "auth", "welcome", "chat.message"} <= SECTION_TITLES


def test_every_error_code_is_in_the_error_table():
    table_codes = set(re.findall(r"^\| `([a-z_]+)` \|", PROTOCOL, flags=re.MULTILINE))
    assert {code.value for code in ErrorCode} <= table_codes


def test_every_close_code_is_in_the_close_table():
    table_codes = {int(c) for c in re.findall(r"^\| (\d{4}) \|", PROTOCOL, flags=re.MULTILINE)}
    assert {int(code) for code in CloseCode} <= table_codes


def test_the_drive_produces_every_event_type_the_apps_name(published):
    assert event_types_in_code(), "no event types found in the publishing modules"
    assert event_types_in_code() - published.types() == set()


def test_every_published_event_has_a_section_naming_each_field(published):
    gaps = {
        frame.type: undocumented(frame.type, frame.data)
        for frame in published.frames()
        if frame.type != "error"  # a reply's shape, checked against "Envelope" below
    }
    assert {frame_type: gap for frame_type, gap in gaps.items() if gap} == {}


def test_each_event_type_has_one_shape(published):
    # A client reads the same fields from every event of a type, whoever published it.
    shapes = {}
    for frame in published.frames():
        shapes.setdefault(frame.type, set()).add(tuple(sorted(frame.data or ())))
    assert {t: s for t, s in shapes.items() if len(s) > 1} == {}


def test_no_section_documents_an_event_the_server_never_sends(published):
    client_frames = set(protocol_frame_types()) | BUILT_IN_COMMANDS
    stale = documented_types() - client_frames - published.types() - CONSUMER_WRITTEN
    assert stale == set()


def test_the_conversation_summary_in_events_is_the_documented_one(published):
    # chat.member_added carries the summary chat.join documents: its fields and its members' fields.
    (join_section,) = [text for types, text, _ in _sections() if "chat.join" in types]
    named = set(re.findall(r'"([a-z_]+)"', join_section))
    for event in published.data_of("chat.member_added"):
        summary = event["conversation"]
        assert set(summary) - named == set()
        assert {key for member in summary["members"] for key in member} - named == set()


def test_member_entries_have_the_one_documented_shape_in_every_domain(published):
    # "Member entries in every domain": the members of a conversation's summary and of a workspace.
    match = re.search(r"^Member entries in every domain: `\{(.*?)\}`", chapter("Member entries"), re.MULTILINE)
    assert match, "docs/protocol.md states no member entry shape"
    documented = set(re.findall(r'"([a-z_]+)"', match.group(1)))
    chat_members = [m for e in published.data_of("chat.member_added") for m in e["conversation"]["members"]]
    workspace_members = [m for e in published.data_of("workspace.updated") for m in e["members"]]
    assert chat_members and workspace_members
    assert {tuple(sorted(m)) for m in chat_members + workspace_members} == {tuple(sorted(documented))}
    # The same user is the same entry in both domains, but for the domain's role.
    chat_alice = next({**m, "role": None} for m in chat_members if m["username"] == "alice")
    workspace_alice = next({**m, "role": None} for m in workspace_members if m["username"] == "alice")
    assert chat_alice == workspace_alice


def test_resync_reasons_are_documented(published):
    # The last one is the drive's own (a loss left over by an earlier test may be announced first).
    assert published.data_of("resync")[-1] == {"reason": "publish_failed"}
    # A hub that lost Redis writes resync {"reason": "hub_reconnected"} to its own connections; that
    # needs a hub losing its layer (realtime/tests/test_resync.py), so only the reason is checked here.
    (resync_section,) = [text for types, text, _ in _sections() if "resync" in types]
    assert {"`publish_failed`", "`hub_reconnected`"} <= set(re.findall(r"`[a-z_]+`", resync_section))


def test_an_admin_disconnect_error_frame_has_the_documented_shape(published):
    (frame,) = [p.frame for p in published.frames() if p.type == "error"]
    envelope = set(re.findall(r'"([a-z_]+)"', chapter("Envelope")))
    assert set(frame) - envelope == set()
    assert set(frame["error"]) - envelope == set()


async def test_frames_the_consumer_writes_match_their_sections(connect, alice, bob):
    # Two conversations shared: presence still reaches each of bob's connections once.
    shared = [await Conversation.objects.acreate(kind=Conversation.Kind.GROUP, title=str(i)) for i in range(2)]
    await Membership.objects.abulk_create(
        [Membership(user=user, conversation=conversation) for conversation in shared for user in (alice, bob)]
    )
    bob_client = await connect(user=bob)
    alice_client = await connect(user=alice)
    await alice_client.send({"type": "ping", "ref": "p"})
    pong = await alice_client.receive_type("pong")
    refused = await alice_client.request("no.such_type", ref="e")
    # A message published after alice came online reaches bob after every presence event it caused.
    await alice_client.request("chat.send", {"conversation_id": shared[0].pk, "content": "hi"}, ref="s")
    seen = []
    while not seen or seen[-1]["type"] != "chat.message":
        seen.append(await bob_client.receive())
    presence = [frame for frame in seen if frame["type"] == "presence.changed"]

    assert [frame["data"]["user_id"] for frame in presence] == [alice.pk]
    assert undocumented("presence.changed", presence[0]["data"]) == []
    assert undocumented("welcome", alice_client.welcome["data"]) == []
    assert undocumented("pong", pong) == []
    envelope = set(re.findall(r'"([a-z_]+)"', chapter("Envelope")))
    assert set(refused) - envelope == set() and set(refused["error"]) - envelope == set()
