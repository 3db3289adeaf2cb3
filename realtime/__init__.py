"""
Switchboard's real-time core. It knows nothing about chat, workspaces or tasks (docs/architecture.md).

What a domain app uses, each module with its own ``__all__``:

- ``registry`` (``handler``, ``batch_handler``, ``session_groups``) and ``context``
  (``HandlerContext``): the frame types an app answers, and the groups its users follow;
- ``validation``, ``errors``, ``paging``, ``rest``, ``users``: arguments in, errors and pages
  out, the same over the socket and REST;
- ``publish``: events to groups, membership changes, closing a user's connections;
- ``groups``, ``signals``, ``periodic``, ``conf``: the user group, ``presence_changed``,
  periodic jobs, the ``REALTIME`` settings;
- ``redis_client``: the configured Redis (one, or behind Sentinel) as a redis-py client or URL;
- the ``delivery`` package's public names (``presence_of``, ``online_user_ids``) and ``ops``'s
  ``cluster_stats``.

The layers below (``consumer``, ``delivery``, ``servers``, ``ops``) are the core's own; each
imports only the ones beneath it, which ``make lint`` checks (pyproject.toml, import-linter).
"""

__all__ = [
    "conf",
    "context",
    "errors",
    "groups",
    "paging",
    "periodic",
    "publish",
    "redis_client",
    "registry",
    "rest",
    "signals",
    "users",
    "validation",
]
