"""
Generic rooms: named groups of connections that are not a chat or a task (a game table, an
announcements channel), joined and published to by clients, by back-end services over HTTP and by
Python code, under rules declared per room namespace in ``settings.ROOMS`` (``rooms.policy``).
"""
