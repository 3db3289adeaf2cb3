"""The workspace REST API: same rules and same broadcasts as the socket."""

import pytest
from rest_framework.test import APIClient

from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_anonymous_is_refused():
    assert api().get("/api/workspaces/").status_code == 401


def test_crud_and_order(alice):
    client = api(alice)
    first = client.post("/api/workspaces/", {"name": "One"}, format="json").json()
    second = client.post("/api/workspaces/", {"name": "Two", "settings": {"a": 1}}, format="json").json()
    assert client.put("/api/workspaces/order/", {"ids": [second["id"], first["id"]]}, format="json").status_code == 200
    assert [w["name"] for w in client.get("/api/workspaces/").json()["workspaces"]] == ["Two", "One"]
    patched = client.patch(f"/api/workspaces/{first['id']}/", {"version": 1, "changes": {"name": "Uno"}}, format="json")
    assert (patched.status_code, patched.json()["version"]) == (200, 2)
    assert client.delete(f"/api/workspaces/{second['id']}/").status_code == 204
    assert [w["name"] for w in client.get("/api/workspaces/").json()["workspaces"]] == ["Uno"]


def test_errors_use_the_protocol_codes(alice, bob, carol, make_user, shared_workspace):
    url = f"/api/workspaces/{shared_workspace.pk}/"
    stale = api(alice).patch(url, {"version": 1, "changes": {"name": "a"}}, format="json")
    assert stale.status_code == 200
    conflict = api(bob).patch(url, {"version": 1, "changes": {"name": "b"}}, format="json")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "conflict"
    assert conflict.json()["error"]["details"]["workspace"]["name"] == "a"
    assert api(carol).patch(url, {"version": 2, "changes": {"name": "c"}}, format="json").status_code == 403
    stranger = api(make_user("dora"))
    assert stranger.get(url).status_code == 404
    assert stranger.get("/api/workspaces/999999/").json() == stranger.get(url).json()
    invalid = api(alice).post("/api/workspaces/", {"name": ""}, format="json")
    assert invalid.status_code == 400 and "name" in invalid.json()["error"]["details"]
    assert Workspace.objects.get(pk=shared_workspace.pk).name == "a"


def test_share_and_unshare(alice, make_user, shared_workspace):
    dora = make_user("dora")
    shared = api(alice).post(
        f"/api/workspaces/{shared_workspace.pk}/members/", {"user_id": dora.pk, "role": "editor"}, format="json"
    )
    assert shared.status_code == 200
    member = {"user_id": dora.pk, "username": "dora", "name": "dora", "is_staff": False, "role": "editor"}
    assert member in shared.json()["members"]
    assert api(dora).get(f"/api/workspaces/{shared_workspace.pk}/").status_code == 200
    assert api(alice).delete(f"/api/workspaces/{shared_workspace.pk}/members/{dora.pk}/").status_code == 204
    assert api(dora).get(f"/api/workspaces/{shared_workspace.pk}/").status_code == 404


def test_openapi_schema_lists_the_workspace_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/workspaces/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/workspaces/{id}/"])
    assert "put" in paths["/api/workspaces/order/"]
    assert "post" in paths["/api/workspaces/{id}/members/"]
    assert "delete" in paths["/api/workspaces/{id}/members/{user_id}/"]
