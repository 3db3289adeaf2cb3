"""
ASGI entry point: ``daphne config.asgi:application`` (and ``manage.py runserver`` via daphne).

HTTP goes to Django; ``/ws/`` goes to the real-time consumer behind the Origin check and the
session + token auth middleware, and so do the apps' compatibility endpoints for the seed servers'
clients (``/compat/000/ws``, ``/compat/001/ws``, ``/compat/002/ws``, ``/ws``: docs/migration.md),
in the same stack. Seed 003's Socket.IO clients have python-socketio's app in front of all of it:
``/compat/003/socket.io/`` (long-polling HTTP and WebSocket) goes there, with the same Origin
check and token rules (rooms/compat/seed003.py), everything else on to the Channels router.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Initialise Django's app registry before importing anything that imports ORM models
# (the consumer and the auth middleware do).
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

from chat.routing import websocket_urlpatterns as chat_compat_urlpatterns  # noqa: E402
from progress.in_server_worker import start_on_first_request  # noqa: E402
from progress.routing import websocket_urlpatterns as progress_compat_urlpatterns  # noqa: E402
from realtime.checks import log_channel_layer_mode  # noqa: E402
from realtime.consumer import (  # noqa: E402
    AllowedHostsBrowserOriginValidator,
    ProtocolTypeRouter,
    RealtimeAuthMiddlewareStack,
    URLRouter,
    websocket_urlpatterns,
)
from rooms.compat.seed003 import socketio_application  # noqa: E402
from workspaces.routing import websocket_urlpatterns as workspaces_compat_urlpatterns  # noqa: E402

websocket_routes = [
    *websocket_urlpatterns,
    *chat_compat_urlpatterns,
    *workspaces_compat_urlpatterns,
    *progress_compat_urlpatterns,
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsBrowserOriginValidator(RealtimeAuthMiddlewareStack(URLRouter(websocket_routes))),
    }
)
application = socketio_application(application)

log_channel_layer_mode()
if settings.TASKS_WORKER_IN_SERVER:
    application = start_on_first_request(application)
