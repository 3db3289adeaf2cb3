"""Start and stop real server processes (Daphne, redis-server) for end-to-end tests and benchmarks."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    """Wait until ``port`` accepts connections; raise RuntimeError if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")


def database_url(settings_dict: dict) -> str:
    """The ``DATABASE_URL`` of a Django database settings dict (the test database, for a subprocess)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        auth = settings_dict["USER"] + (f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else "")
        host = settings_dict["HOST"] or "localhost"
        port = settings_dict["PORT"] or 5432
        return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"
    raise ValueError(f"no DATABASE_URL form for {engine}")


class Daphne:
    """
    ``daphne config.asgi:application`` on a free port of 127.0.0.1, with ``env`` over ours;
    pinned to the CPU numbers in ``cpus`` when given (benchmarks keep server and load apart); run
    from the checkout ``cwd`` when given (a benchmark's baseline), else from this one.
    """

    # A server whose process starts others (runserver's autoreloader) is stopped as a process group.
    own_process_group = False

    def __init__(
        self,
        env: dict[str, str],
        extra_args: list[str] | None = None,
        cpus: set[int] | None = None,
        cwd: Path | None = None,
    ):
        self.env = env
        self.cwd = cwd or BASE_DIR
        self.extra_args = extra_args or []
        self.cpus = cpus
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws/"
        self.http = f"http://127.0.0.1:{self.port}"
        self._spawn()

    def _spawn(self) -> None:
        self.log = open(BASE_DIR / f".daphne-{self.port}.log", "w+b")  # noqa: SIM115 (kept for the process's life)
        cpus = self.cpus
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.cwd,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **self.env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            start_new_session=self.own_process_group,
        )
        try:
            wait_for_port(self.port, self.proc)
        except RuntimeError:
            self.stop()
            raise

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            *self.extra_args,
            "config.asgi:application",
        ]

    def start_again(self) -> None:
        """Start a new process on the same port after ``stop()`` (a restart clients reconnect to)."""
        self._spawn()

    def output(self) -> str:
        """Everything the process wrote so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send ``sig``, wait for the exit and return the exit code (SIGKILL after ``timeout``)."""
        if self.proc.poll() is None:
            self._signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        if self.own_process_group:
            self._wait_until_port_is_free(timeout)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        if self.own_process_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def _wait_until_port_is_free(self, timeout: float) -> None:
        # The group's other processes (the server the reloader started) may outlive its leader briefly.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)
        os.killpg(self.proc.pid, signal.SIGKILL)


class RunServer(Daphne):
    """
    ``manage.py runserver`` as ``make run`` starts it: Channels' (Daphne's) development server with
    Django's autoreloader, which serves from a thread of a child process; ``reload=False`` adds
    ``--noreload`` (one process, the server in its main thread).
    """

    own_process_group = True

    def __init__(self, env: dict[str, str], reload: bool = True):
        super().__init__(env, extra_args=[] if reload else ["--noreload"])

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", *self.extra_args]


class Uvicorn(Daphne):
    """The same application under uvicorn (uvloop, the ``websockets`` implementation)."""

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--ws",
            "websockets",
            "--log-level",
            "warning",
            *self.extra_args,
            "config.asgi:application",
        ]


class BatchWorker:
    """``manage.py db_worker`` (django-tasks' database worker) with ``env`` over ours."""

    def __init__(self, env: dict[str, str]):
        self.log = open(BASE_DIR / f".worker-{os.getpid()}-{id(self)}.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.2", "--no-startup-delay"],
            cwd=BASE_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> int:
        """SIGTERM (the worker finishes its task first), SIGKILL after 10 s; return the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)
        return self.proc.returncode


class RedisServer:
    """A throwaway ``redis-server`` on a free port of 127.0.0.1 (no persistence) that tests stop and start."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """Start (again) on the same port; an empty Redis, as after a real restart without persistence."""
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop it (SIGKILL to simulate a crash) and wait for the exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
