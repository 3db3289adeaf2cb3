"""The batch worker inside the server starts with the first request it serves (progress/in_server_worker.py)."""

from progress import in_server_worker


async def test_a_server_takes_tasks_only_once_it_serves_a_request(monkeypatch):
    started = []
    monkeypatch.setattr(in_server_worker, "_started", in_server_worker.threading.Event())
    monkeypatch.setattr(in_server_worker, "start_in_server_worker", lambda: started.append(True) or None)
    served = []

    async def app(scope, receive, send):
        served.append(scope["type"])

    application = in_server_worker.start_on_first_request(app)
    assert started == []  # loaded, not serving (its port may be taken): no worker yet
    await application({"type": "http"}, None, None)
    assert started == [True] and served == ["http"]
