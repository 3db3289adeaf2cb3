"""
realtime's own test app (label ``realtime_testapp``): a domain app in miniature, so that the
core's tests drive frames, session groups and presence without importing chat or workspaces
(the import-linter contract "realtime imports no domain app, its tests included").

Installed for the tests only (``config/test_settings.py``, the settings pytest.ini names); it
uses realtime's public API alone, as a domain app does. Rooms and their members; frames:

- ``lobby.join {room_id}``: a member follows the room's group and its viewers group (two groups
  the client asked for: they count against ``MAX_SUBSCRIPTIONS``);
- ``lobby.typing {room_id}``: ``lobby.typing`` to the other viewers of the room;
- ``lobby.send {room_id, text}`` (a batch handler): ``lobby.message`` to the room's members.

Session groups: the groups of the user's rooms. Presence: ``presence.changed`` to the user's rooms.
"""
