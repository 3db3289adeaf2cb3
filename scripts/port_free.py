"""
Exit 0 when nothing listens on 127.0.0.1:<argv[1]>; else say so and exit 1.

``make run`` checks first: Daphne's runserver only logs "Couldn't listen" and stays up, so a
second ``make run`` would otherwise linger without serving anything.
"""

import socket
import sys

port = int(sys.argv[1])
with socket.socket() as probe:
    in_use = probe.connect_ex(("127.0.0.1", port)) == 0
if in_use:
    print(
        f"make run: something already listens on 127.0.0.1:{port} (another make run?). "
        "Stop it first, or serve elsewhere: .venv/bin/python manage.py runserver 127.0.0.1:<port>",
        file=sys.stderr,
    )
    sys.exit(1)
