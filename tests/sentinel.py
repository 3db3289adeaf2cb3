"""A Redis master, one replica and three sentinels on loopback, for failover tests and benchmarks."""

import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.servers import free_port, wait_for_port

MASTER_NAME = "switchboard"
SENTINELS = 3
# Two of the three sentinels must agree that the master is down before one of them fails over.
QUORUM = 2


class SentinelCluster:
    """
    ``redis-server`` master and replica (no persistence) and three ``redis-server --sentinel``
    watching them as ``MASTER_NAME``, with configs in ``workdir``. ``down_after_ms`` is how long
    the master may be silent before a sentinel calls it down (Sentinel's default, 30 s, would make
    a test wait that long); ``failover_timeout_ms`` bounds one failover attempt.
    """

    def __init__(self, workdir: Path, down_after_ms: int = 1000, failover_timeout_ms: int = 5000):
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.master_port, self.replica_port = free_port(), free_port()
        self.master = self._data_node(self.master_port)
        self.replica = self._data_node(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        self.sentinel_ports = [free_port() for _ in range(SENTINELS)]
        for port in self.sentinel_ports:
            conf = workdir / f"sentinel-{port}.conf"
            # Sentinel rewrites its config file with what it learns: it must be writable.
            conf.write_text(
                f"port {port}\n"
                "bind 127.0.0.1\n"
                f"dir {workdir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self._spawn(["redis-server", str(conf), "--sentinel"], port)

    def _spawn(self, command: list[str], port: int) -> subprocess.Popen:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        try:
            wait_for_port(port, proc)
        except RuntimeError:
            self.stop()
            raise
        return proc

    def _data_node(self, port: int, *args: str) -> subprocess.Popen:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        return self._spawn([*command, "--dir", str(self.workdir), *args], port)

    @property
    def env(self) -> dict[str, str]:
        """The settings a Switchboard process needs to use this cluster (README, Redis high availability)."""
        return {
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)

    def _ready(self) -> bool:
        with redis.Redis(port=self.replica_port, socket_timeout=2, socket_connect_timeout=2) as replica:
            link = replica.info("replication").get("master_link_status")
        if link != "up":
            return False
        for port in self.sentinel_ports:
            with self._sentinel(port) as sentinel:
                replicas = sentinel.sentinel_slaves(MASTER_NAME)
                others = sentinel.sentinel_sentinels(MASTER_NAME)
            if len(replicas) != 1 or "s_down" in replicas[0]["flags"] or len(others) != SENTINELS - 1:
                return False
        return True

    def wait_until_ready(self, timeout: float = 30) -> None:
        """
        Wait until the replica is in sync and every sentinel knows it and the other sentinels
        (discovered through the master within a few seconds): a failover needs both. RuntimeError
        after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"sentinels not ready after {timeout} s")
            time.sleep(0.1)

    def master_port_now(self) -> int | None:
        """The master's port as a majority of the sentinels name it now, or None without a majority."""
        named = []
        for port in self.sentinel_ports:
            try:
                with self._sentinel(port) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if address:
                named.append(int(address[1]))
        for candidate in set(named):
            if named.count(candidate) >= QUORUM:
                return candidate
        return None

    def kill_master(self) -> None:
        """SIGKILL the master (a crash: no chance to hand over) and wait for it to exit."""
        self.master.send_signal(signal.SIGKILL)
        self.master.wait(10)

    def wait_for_promotion(self, timeout: float = 30) -> None:
        """Wait until a majority of sentinels name the replica as master; RuntimeError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.master_port_now() != self.replica_port:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica was not promoted within {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every process (SIGKILL: nothing here is kept) and wait for them."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
