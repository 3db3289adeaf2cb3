"""The batch-tasks browser page (templates/progress/index.html); live data arrives over the socket."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from .generation import DATA_EXTENSIONS, TEMPLATE_EXTENSIONS


@login_required
@ensure_csrf_cookie  # the upload is a session-authenticated POST /api/tasks/: it needs the CSRF token
def tasks_page(request):
    """``/tasks/``: the signed-in user's tasks with live progress (static/progress/tasks.js)."""
    return render(
        request,
        "progress/index.html",
        {
            "data_accept": ",".join(DATA_EXTENSIONS),
            "template_accept": ",".join(TEMPLATE_EXTENSIONS),
        },
    )
