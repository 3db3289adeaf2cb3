"""A change made over REST or in the admin reaches open sockets exactly like a socket change."""

from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from workspaces.models import Workspace


def rest_patch(user, workspace_id, body):
    client = APIClient()
    client.force_authenticate(user)
    return client.patch(f"/api/workspaces/{workspace_id}/", body, format="json")


async def test_rest_update_is_pushed_to_members(connect, alice, bob, shared_workspace):
    socket = await connect(user=bob)
    response = await sync_to_async(rest_patch)(
        alice, shared_workspace.pk, {"version": 1, "changes": {"name": "via REST"}}
    )
    assert response.status_code == 200
    event = await socket.receive_type("workspace.updated")
    assert (event["data"]["name"], event["data"]["version"]) == ("via REST", 2)


def admin_change(staff, workspace_id, name, based_on_version):
    from django.test import Client

    client = Client()
    client.force_login(staff)
    workspace = Workspace.objects.get(pk=workspace_id)
    return client.post(
        f"/admin/workspaces/workspace/{workspace_id}/change/",
        {
            "name": name,
            "description": workspace.description,
            "settings": '{"color": "red"}',
            "based_on_version": based_on_version,
            "members-TOTAL_FORMS": "3",
            "members-INITIAL_FORMS": "3",
            **{f"members-{i}-id": m.pk for i, m in enumerate(workspace.members.order_by("pk"))},
            **{f"members-{i}-workspace": workspace_id for i in range(3)},
        },
    )


async def test_admin_change_is_pushed_and_a_stale_admin_form_is_refused(connect, make_user, bob, shared_workspace):
    staff = await sync_to_async(make_user)("desk", is_staff=True, is_superuser=True)
    socket = await connect(user=bob)
    response = await sync_to_async(admin_change)(staff, shared_workspace.pk, "via admin", 1)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = await socket.receive_type("workspace.updated")
    assert (event["data"]["name"], event["data"]["settings"], event["data"]["version"]) == (
        "via admin",
        {"color": "red"},
        2,
    )
    stale = await sync_to_async(admin_change)(staff, shared_workspace.pk, "overwrite", 1)
    assert stale.status_code == 200 and "Someone changed this workspace meanwhile" in stale.content.decode()
    assert (await sync_to_async(Workspace.objects.get)(pk=shared_workspace.pk)).name == "via admin"
