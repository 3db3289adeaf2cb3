"""
Who may do what to a workspace, over the socket and REST (docs/protocol.md, "Workspaces"): the
owner everything; an editor updates; a viewer reads; anyone else, staff included, gets
``not_found`` exactly like an unknown id. A refusal writes nothing.
"""

import pytest
from asgiref.sync import sync_to_async

from conftest import bearer_client
from workspaces.models import Workspace, WorkspaceMember

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = 10**9

# Each command that names a workspace -> (its data for workspace ``wid``, the roles it allows).
COMMANDS = {
    "workspace.update": (lambda wid, dave: {"id": wid, "version": 1, "changes": {"name": "X"}}, {"owner", "editor"}),
    "workspace.share": (lambda wid, dave: {"id": wid, "user_id": dave, "role": "viewer"}, {"owner"}),
    "workspace.unshare": (lambda wid, dave: {"id": wid, "user_id": dave}, {"owner"}),
    "workspace.delete": (lambda wid, dave: {"id": wid}, {"owner"}),
}
WHO = ["owner", "editor", "viewer", "outsider", "staff"]


@pytest.fixture
def people(alice, bob, carol, make_user, shared_workspace):
    """alice owns ``shared_workspace``, bob edits, carol views; dave is outside; ops is staff outside."""
    dave = make_user("dave")
    # dave is a viewer of it too, so that unshare has someone to remove other than the actor.
    WorkspaceMember.objects.create(workspace=shared_workspace, user=dave, role="viewer")
    return {
        "owner": alice,
        "editor": bob,
        "viewer": carol,
        "outsider": make_user("eve"),
        "staff": make_user("ops", is_staff=True),
        "dave": dave,
    }


def state(workspace_id: int):
    """What a write would change: the workspace row (or None) and its members' roles."""
    workspace = Workspace.objects.filter(pk=workspace_id).values("name", "version").first()
    roles = sorted(WorkspaceMember.objects.filter(workspace_id=workspace_id).values_list("user_id", "role"))
    return workspace, roles


def expected(who: str, allowed: set[str]) -> str:
    if who in allowed:
        return "ack"
    return "forbidden" if who in ("editor", "viewer") else "not_found"


@pytest.mark.parametrize("channel_layer", ["memory"], indirect=True)
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("who", WHO)
async def test_socket_commands(connect, people, shared_workspace, command, who):
    data, allowed = COMMANDS[command]
    client = await connect(user=people[who])
    before = await sync_to_async(state)(shared_workspace.pk)
    reply = await client.request(command, data(shared_workspace.pk, people["dave"].pk))
    unknown = await client.request(command, data(UNKNOWN, people["dave"].pk), ref="unknown")
    assert unknown["error"]["code"] == "not_found"
    outcome = expected(who, allowed)
    if outcome == "ack":
        assert reply["type"] == "ack", reply
        return
    assert reply["error"]["code"] == outcome, reply
    if outcome == "not_found":  # not yours and not there look the same
        assert reply["error"] == unknown["error"]
    assert "details" not in reply["error"]
    assert await sync_to_async(state)(shared_workspace.pk) == before


@pytest.mark.parametrize("channel_layer", ["memory"], indirect=True)
@pytest.mark.parametrize("who", WHO)
async def test_list_shows_only_ones_own_workspaces(connect, people, shared_workspace, who):
    client = await connect(user=people[who])
    workspaces = (await client.request("workspace.list"))["data"]["workspaces"]
    assert [w["id"] for w in workspaces] == ([shared_workspace.pk] if who in ("owner", "editor", "viewer") else [])


def rest_client(who: str, people: dict, make_user):
    """A REST client as ``who``: a member or outsider, anonymous, deactivated, or with an expired token."""
    if who == "deactivated":
        return bearer_client(make_user("ghost", is_active=False))
    if who == "expired_token":
        return bearer_client(people["owner"], expired=True)
    return bearer_client(people.get(who))


@pytest.mark.parametrize("who", [*WHO, "anonymous", "deactivated", "expired_token"])
def test_rest_paths(people, shared_workspace, make_user, who):
    client = rest_client(who, people, make_user)
    wid, dave = shared_workspace.pk, people["dave"].pk
    before = state(wid)
    calls = {
        "detail": (lambda w: client.get(f"/api/workspaces/{w}/"), {"owner", "editor", "viewer"}, 200),
        "update": (
            lambda w: client.patch(
                f"/api/workspaces/{w}/", {"version": 1, "changes": {"name": "X"}}, content_type="application/json"
            ),
            {"owner", "editor"},
            200,
        ),
        "share": (
            lambda w: client.post(
                f"/api/workspaces/{w}/members/", {"user_id": dave, "role": "editor"}, content_type="application/json"
            ),
            {"owner"},
            200,
        ),
        "unshare": (lambda w: client.delete(f"/api/workspaces/{w}/members/{dave}/"), {"owner"}, 200),
    }
    for name, (call, allowed, ok_status) in calls.items():
        unknown = call(UNKNOWN)
        response = call(wid)
        if who in ("anonymous", "deactivated", "expired_token"):
            assert response.status_code == 401 and unknown.status_code == 401, name
            assert "Roadmap" not in response.content.decode()
            continue
        outcome = expected(who, allowed)
        if outcome == "ack":
            assert response.status_code in (ok_status, 201, 204), (name, response.content)
            continue
        assert response.status_code == {"forbidden": 403, "not_found": 404}[outcome], (name, response.content)
        assert response.json()["error"]["code"] == outcome
        if outcome == "not_found":
            assert response.json() == unknown.json()
    if who not in ("owner", "editor"):
        assert state(wid) == before
