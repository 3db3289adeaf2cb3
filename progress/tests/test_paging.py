"""task.list and GET /api/tasks/ page with limit and cursor (docs/protocol.md, "Lists")."""

import base64

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import Client as DjangoClient
from django.utils import timezone

from progress import services
from progress.models import BatchTask


def b64(value) -> str:
    """A hand-made cursor: base64url (no padding) of ``value`` as JSON."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def tasks_of(user, count: int, *, same_time: bool = False) -> list[int]:
    """``count`` tasks of ``user``; return their ids newest first (created_at, then id, descending)."""
    tasks = [services.create_task(owner=user, name=f"t{n}") for n in range(count)]
    if same_time:  # ties on created_at are broken by id
        BatchTask.objects.filter(pk__in=[t.pk for t in tasks[1:-1]]).update(created_at=timezone.now())
    rows = BatchTask.objects.filter(owner=user).order_by("-created_at", "-pk")
    return list(rows.values_list("pk", flat=True))


async def test_task_list_pages_every_task_once_newest_first(connect, alice, bob):
    order = await sync_to_async(tasks_of)(alice, 8, same_time=True)
    await sync_to_async(tasks_of)(bob, 2)  # not alice's
    client = await connect(user=alice)
    seen, cursor, sizes = [], None, []
    while True:
        reply = await client.request("task.list", {"limit": 3, "cursor": cursor}, ref=f"p{len(sizes)}")
        assert reply["type"] == "ack", reply
        page = reply["data"]
        sizes.append(len(page["tasks"]))
        seen += [t["task_id"] for t in page["tasks"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert sizes == [3, 3, 2]
    assert seen == order


async def test_task_list_default_page_and_snapshot_shape(connect, alice):
    (task_id,) = await sync_to_async(tasks_of)(alice, 1)
    client = await connect(user=alice)
    page = (await client.request("task.list"))["data"]
    assert (page["next_cursor"], page["has_more"]) == (None, False)
    (task,) = page["tasks"]
    assert (task["task_id"], task["status"], task["version"]) == (task_id, "pending", 1)


@pytest.mark.parametrize(
    "cursor", ["garbage", b64(["tasks", 1]), b64(["tasks", 1.5, 2]), b64(["workspaces", 1, 1]), ""]
)
async def test_a_malformed_cursor_is_invalid(connect, alice, cursor):
    await sync_to_async(tasks_of)(alice, 1)
    client = await connect(user=alice)
    reply = await client.request("task.list", {"cursor": cursor})
    assert reply["error"]["code"] == "invalid"
    assert "cursor" in reply["error"]["details"]


@pytest.mark.django_db(transaction=True)
def test_rest_task_list_pages_like_the_socket(alice):
    order = tasks_of(alice, 5)
    api = DjangoClient()
    api.force_login(alice)
    seen, url = [], "/api/tasks/?limit=2"
    while url:
        page = api.get(url).json()
        seen += [t["task_id"] for t in page["tasks"]]
        url = page["next_cursor"] and f"/api/tasks/?limit=2&cursor={page['next_cursor']}"
    assert seen == order
    assert api.get("/api/tasks/?cursor=bogus").status_code == 400
