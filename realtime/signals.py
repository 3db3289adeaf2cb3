"""Signals the real-time core sends; apps connect receivers in their ``AppConfig.ready()``."""

from django.dispatch import Signal

__all__ = ["presence_changed"]

# A user's first connection opened (online=True) or their last one closed or expired
# (online=False), on any process; sent once per transition, in a worker thread (receivers may
# use the ORM). Arguments: user_id (int), online (bool), last_seen (epoch ms or None).
presence_changed = Signal()
