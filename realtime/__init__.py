"""
Switchboard's real-time core: envelope, errors, handler registry, auth, consumer, hub, publish.

It knows nothing about chat, workspaces or tasks; apps register handlers with ``handler`` and
publish with ``publish`` / ``publish_on_commit``.
"""
