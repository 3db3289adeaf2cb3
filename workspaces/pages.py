"""The workspaces browser page (templates/workspaces/index.html); data arrives over the socket."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def workspaces_page(request):
    """``/workspaces/``: the signed-in user's workspaces, live (static/workspaces/workspaces.js)."""
    return render(request, "workspaces/index.html")
