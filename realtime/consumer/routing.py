"""
WebSocket URL routes (one multiplexed endpoint), and Channels' two routers in a form that holds
nothing for the connection's life.

Each ASGI layer that ``await``s its inner application keeps a suspended coroutine for as long as
the connection is open. Channels' ``ProtocolTypeRouter`` and ``URLRouter`` (channels/routing.py,
Channels 4.3) decide without waiting on anything, so the versions here hand over the routed
application's coroutine instead (``return application(...)`` from a plain ``__call__``): the
caller awaits it, and the router's frame (250-380 bytes per idle connection, ``make bench-heap``)
is gone. They route as Channels' do; a router nested in ``URLRouter`` must be this one too, since
a route's ``Resolver404`` moves on to the next route only when raised before the handover.
"""

from channels import routing
from django.urls import path
from django.urls.exceptions import Resolver404

from .consumer import RealtimeConsumer

websocket_urlpatterns = [path("ws/", RealtimeConsumer.as_asgi())]


class ProtocolTypeRouter(routing.ProtocolTypeRouter):
    """Channels' ``ProtocolTypeRouter``, handing over the application for the scope's type."""

    # An ASGI 3 application (asgiref's guarantee_single_callable): __call__ returns a coroutine.
    _asgi_single_callable = True

    def __call__(self, scope, receive, send):
        if scope["type"] not in self.application_mapping:
            raise ValueError(f"No application configured for scope type {scope['type']!r}")
        return self.application_mapping[scope["type"]](scope, receive, send)


class URLRouter(routing.URLRouter):
    """Channels' ``URLRouter`` (its ``__call__``, line for line), handing over the matched route's application."""

    _asgi_single_callable = True

    def __call__(self, scope, receive, send):
        path = scope.get("path_remaining", scope.get("path", None))
        if path is None:
            raise ValueError("No 'path' key in connection scope, cannot route URLs")
        if "path_remaining" not in scope:
            # We are the outermost URLRouter, so handle root_path if present.
            root_path = scope.get("root_path", "")
            if root_path and not path.startswith(root_path):
                raise ValueError(f"No route found for path {path!r}.")
            path = path[len(root_path) :]
        # Remove leading / to match Django's handling
        path = path.lstrip("/")
        for route in self.routes:
            try:
                match = route.pattern.match(path)
                if match:
                    new_path, args, kwargs = match
                    kwargs.update(route.default_args)
                    outer = scope.get("url_route", {})
                    return route.callback(
                        dict(
                            scope,
                            path_remaining=new_path,
                            url_route={
                                "args": outer.get("args", ()) + args,
                                "kwargs": {**outer.get("kwargs", {}), **kwargs},
                            },
                        ),
                        receive,
                        send,
                    )
            except Resolver404:
                pass
        if "path_remaining" in scope:
            raise Resolver404(f"No route found for path {path!r}.")
        raise ValueError(f"No route found for path {path!r}.")
