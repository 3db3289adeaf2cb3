"""The chat browser page (templates/chat/index.html); data arrives over the socket and REST."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def chat_page(request):
    """``/chat/``: the signed-in user's conversations, live (static/chat/chat.js)."""
    return render(request, "chat/index.html")
