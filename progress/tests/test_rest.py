"""The batch-task REST API, the external producers' endpoint, broadcaster stats and the admin actions."""

import io
import time
import zipfile

import pytest
from django.test import Client as DjangoClient

from progress import jobs
from progress.models import BatchTask
from progress.tests.conftest import docx_template

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(alice):
    client = DjangoClient()
    client.force_login(alice)
    return client


def create(api, uploads, **overrides):
    data, template = uploads("name\nAda\nBob\n", docx_template("Hi {{ name }}"))
    return api.post("/api/tasks/", {"name": "letters", "data_file": data, "template": template, **overrides})


def test_create_run_read_and_download(api, media_root, uploads, django_capture_on_commit_callbacks):
    response = create(api, uploads)
    assert response.status_code == 201
    task_id = response.json()["task_id"]
    assert response.json()["status"] == "pending" and len(response.json()["progress_token"]) > 20
    assert api.get(f"/api/tasks/{task_id}/download").status_code == 409  # not ready
    jobs.run_batch(task_id)  # what `manage.py db_worker` does with the queued job
    assert [t["task_id"] for t in api.get("/api/tasks/").json()["tasks"]] == [task_id]
    detail = api.get(f"/api/tasks/{task_id}/").json()
    assert detail["status"] == "completed" and detail["download"] is True
    assert [d["output_name"] for d in detail["documents"]] == ["document-00001.docx", "document-00002.docx"]
    download = api.get(f"/api/tasks/{task_id}/download")
    assert download["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as archive:
        assert len(archive.namelist()) == 2


def test_uploads_are_checked(api, media_root, uploads, settings):
    data, _ = uploads("name\nAda\n", b"")
    refused = api.post("/api/tasks/", {"name": "x", "data_file": data, "template": io.BytesIO(b"x")})
    assert refused.status_code == 400
    settings.TASK_MAX_UPLOAD_BYTES = 10
    too_big = create(api, uploads)
    assert too_big.status_code == 400 and "limited to 10 bytes" in str(too_big.json())


def test_commands_follow_the_rules_and_others_tasks_are_not_found(api, bob, media_root, uploads):
    task_id = create(api, uploads).json()["task_id"]
    assert api.post(f"/api/tasks/{task_id}/pause").status_code == 409  # pending cannot pause
    assert api.post(f"/api/tasks/{task_id}/cancel").json()["status"] == "cancelled"
    other = DjangoClient()
    other.force_login(bob)
    hidden, unknown = other.get(f"/api/tasks/{task_id}/"), other.get("/api/tasks/999999/")
    assert hidden.status_code == unknown.status_code == 404 and hidden.json() == unknown.json()


def test_external_producer_reports_with_the_task_token(api, media_root, uploads, staff_user):
    created = create(api, uploads).json()
    url = f"/api/tasks/{created['task_id']}/progress"
    anonymous = DjangoClient()
    assert anonymous.post(url, {"current": 1}, content_type="application/json").status_code == 403
    headers = {"HTTP_X_PROGRESS_TOKEN": created["progress_token"]}
    started = anonymous.post(
        url, {"current": 0, "total": 4, "status": "running"}, content_type="application/json", **headers
    )
    assert started.json()["status"] == "running" and started.json()["total"] == 4
    held = anonymous.post(url, {"current": 2}, content_type="application/json", **headers).json()
    assert held["coalesced"] is True  # within 100 ms of the previous update
    time.sleep(0.2)
    assert api.get(f"/api/tasks/{created['task_id']}/").json()["progress"] == 50.0
    done = anonymous.post(url, {"current": 4, "status": "completed"}, content_type="application/json", **headers)
    assert done.json()["status"] == "completed"
    staff = DjangoClient()
    staff.force_login(staff_user)
    stats = staff.get("/api/broadcaster/stats").json()
    assert {
        "total_broadcasts",
        "successful_sends",
        "failed_sends",
        "average_latency_ms",
        "queue_size",
        "cache_size",
        "last_update",
    } <= set(stats)
    assert stats["cache_size"] >= 1
    assert api.get("/api/broadcaster/stats").status_code == 403


def test_admin_actions_go_through_the_services(media_root, uploads, api, staff_user):
    task_id = create(api, uploads).json()["task_id"]
    admin = DjangoClient()
    admin.force_login(staff_user)
    response = admin.post(
        "/admin/progress/batchtask/", {"action": "request_cancelled", "_selected_action": [task_id]}, follow=True
    )
    assert "Cancel: 1 task(s)." in response.content.decode()
    assert BatchTask.objects.get(pk=task_id).status == "cancelled"
    again = admin.post(
        "/admin/progress/batchtask/", {"action": "request_paused", "_selected_action": [task_id]}, follow=True
    )
    assert "A cancelled task cannot become paused" in again.content.decode()
    assert admin.get(f"/admin/progress/batchtask/{task_id}/change/").status_code == 200


def test_openapi_schema_lists_the_task_endpoints(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    assert {
        "/api/tasks/",
        "/api/tasks/{id}/",
        "/api/tasks/{id}/pause",
        "/api/tasks/{id}/download",
        "/api/tasks/{id}/progress",
        "/api/broadcaster/stats",
    } <= set(paths)
    assert "multipart/form-data" in paths["/api/tasks/"]["post"]["requestBody"]["content"]


def test_an_upload_whose_every_document_would_fail_is_refused_in_words(api, media_root, uploads):
    data, template = uploads("name,town\nAda,Oslo\n", b"{{ name }} of {{ city }}", "note.txt")
    refused = api.post("/api/tasks/", {"name": "notes", "data_file": data, "template": template})
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {
        "template": [
            "The template uses the field “city”, which the data file has no column for (its columns: “name”, “town”)."
        ]
    }
    data, template = uploads("name;city\nAda;Oslo\n", docx_template("{{ name }} of {{ city }}"))
    refused = api.post("/api/tasks/", {"name": "letters", "data_file": data, "template": template})
    assert refused.json()["error"]["details"]["template"][0].endswith(
        "(its columns: “name;city”). The header row reads as one column: separate the columns with commas."
    )
    data, template = uploads("name,name\nAda,Bo\n", b"{{ name }}", "note.txt")
    refused = api.post("/api/tasks/", {"name": "notes", "data_file": data, "template": template})
    assert refused.json()["error"]["details"] == {
        "data_file": ["The header row names “name” more than once: each column needs a name of its own."]
    }
    assert not BatchTask.objects.exists()
