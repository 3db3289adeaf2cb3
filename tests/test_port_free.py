"""``make run`` refuses to start when port 8000 is taken (scripts/port_free.py), instead of lingering unserved."""

import socket
import subprocess
import sys

from tests.servers import BASE_DIR

SCRIPT = BASE_DIR / "scripts" / "port_free.py"


def test_a_taken_port_is_refused_with_a_hint_and_a_free_one_passes():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        taken = subprocess.run([sys.executable, SCRIPT, str(port)], capture_output=True, text=True, timeout=30)
    assert taken.returncode == 1
    assert f"already listens on 127.0.0.1:{port}" in taken.stderr
    free = subprocess.run([sys.executable, SCRIPT, str(port)], capture_output=True, text=True, timeout=30)
    assert free.returncode == 0, free.stderr
