"""
Who may do what to a batch task, over the socket and REST (docs/protocol.md, "Batch tasks"): its
owner and staff; anyone else gets exactly what an unknown id gets, ``not_found`` with the same
message and none of the task's data (docs/protocol.md, "not_found or forbidden"); without valid
credentials, 401. A refusal changes nothing. The producers' endpoint checks the task's own token
instead: 403 without it.
"""

import pytest
from asgiref.sync import sync_to_async

from conftest import bearer_client
from progress import services
from progress.models import BatchTask

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = 10**9
COMMANDS = {
    "task.subscribe": lambda tid: {"task_ids": [tid]},
    "task.unsubscribe": lambda tid: {"task_ids": [tid]},
    "task.pause": lambda tid: {"task_id": tid},
    "task.resume": lambda tid: {"task_id": tid},
    "task.cancel": lambda tid: {"task_id": tid},
}


@pytest.fixture
def people(alice, bob, make_user):
    return {"owner": alice, "outsider": bob, "staff": make_user("ops", is_staff=True)}


@pytest.fixture
def task(alice):
    """alice's task, running (so that pause is allowed)."""
    task = services.create_task(owner=alice, name="letters", total=10)
    services.request(task.pk, BatchTask.Status.RUNNING)
    return task


def state(task_id: int):
    return BatchTask.objects.filter(pk=task_id).values("status", "version").first()


@pytest.mark.parametrize("channel_layer", ["memory"], indirect=True)
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("who", ["owner", "outsider", "staff"])
async def test_socket_commands(connect, people, task, command, who):
    client = await connect(user=people[who])
    before = await sync_to_async(state)(task.pk)
    reply = await client.request(command, COMMANDS[command](task.pk))
    unknown = await client.request(command, COMMANDS[command](UNKNOWN), ref="unknown")
    if command == "task.unsubscribe":  # leaving what one does not follow changes nothing
        assert reply["type"] == unknown["type"] == "ack"
        return
    assert unknown["error"] == {"code": "not_found", "message": "Task not found"}
    if who == "outsider":
        # Another user's task and no task: the same frame, code and message.
        assert {k: v for k, v in reply.items() if k != "ref"} == {k: v for k, v in unknown.items() if k != "ref"}
        assert "letters" not in str(reply)
        assert await sync_to_async(state)(task.pk) == before
    else:
        assert reply["type"] == "ack" or reply["error"]["code"] == "conflict", reply  # resume of a running task


@pytest.mark.parametrize("who", ["owner", "outsider", "staff", "anonymous", "deactivated", "expired_token"])
def test_rest_paths(people, task, make_user, who):
    if who == "deactivated":
        client = bearer_client(make_user("ghost", is_active=False))
    elif who == "expired_token":
        client = bearer_client(people["owner"], expired=True)
    else:
        client = bearer_client(people.get(who))
    before = state(task.pk)
    calls = {
        "detail": lambda t: client.get(f"/api/tasks/{t}/"),
        "pause": lambda t: client.post(f"/api/tasks/{t}/pause"),
        "cancel": lambda t: client.post(f"/api/tasks/{t}/cancel"),
        "download": lambda t: client.get(f"/api/tasks/{t}/download"),
    }
    for name, call in calls.items():
        unknown, response = call(UNKNOWN), call(task.pk)
        if who in ("anonymous", "deactivated", "expired_token"):
            assert response.status_code == unknown.status_code == 401, name
        elif who == "outsider":
            assert response.status_code == unknown.status_code == 404, name
            assert response.json() == unknown.json() == {"error": {"code": "not_found", "message": "Task not found"}}
        else:
            # Allowed: the command runs (the download is not ready yet: conflict, not a refusal).
            expected = {"detail": 200, "pause": 200, "cancel": 200, "download": 409}[name]
            assert response.status_code == expected and unknown.status_code == 404, (name, response.content)
    if who not in ("owner", "staff"):
        assert state(task.pk) == before


def test_progress_reports_need_the_tasks_own_token(task, people):
    before = state(task.pk)
    for headers in ({}, {"X-Progress-Token": "guess"}, {"Authorization": "Bearer x"}):
        response = bearer_client().post(
            f"/api/tasks/{task.pk}/progress", {"current": 5}, content_type="application/json", headers=headers
        )
        assert response.status_code == 403
    # A user's own valid credentials are not the task's token either.
    response = bearer_client(people["owner"]).post(
        f"/api/tasks/{task.pk}/progress", {"current": 5}, content_type="application/json"
    )
    assert response.status_code == 403
    assert state(task.pk) == before
