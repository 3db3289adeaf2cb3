"""The chat browser page (templates/chat/index.html); data arrives over the socket and REST."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .serializers import type_names


@login_required
def chat_page(request):
    """
    ``/chat/``: the signed-in user's conversations, live (static/chat/chat.js). The page is told
    the limits it enforces before the server would: ``CHAT_MAX_MESSAGE_CHARS`` (the composer's
    counter) and the upload types (the file picker's ``accept`` and its hint).
    """
    types = [*settings.CHAT_IMAGE_TYPES, *settings.CHAT_FILE_TYPES]
    return render(
        request,
        "chat/index.html",
        {
            "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
            "upload_accept": ",".join(types),
            "upload_types": type_names(types),
        },
    )
