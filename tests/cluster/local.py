"""A throwaway Redis Cluster of this test run's own (scripts/cluster.sh), for tests that disturb it.

Failover and resharding change which node owns what. They run on a cluster started for the
test module on ports nobody else uses (free_base_port), so the shared CI cluster stays healthy.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests import backends

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cluster.sh"
HOST = "127.0.0.1"
# Where cluster.sh keeps each cluster's pid files and logs (its `dir`), and the ports' lock.
TEMP = Path(os.environ.get("TMPDIR", "/tmp"))
BUS_OFFSET = 10_000  # Redis Cluster's bus listens on each node's port + 10000


def free_base_port(start: int = 7100, stop: int = 7900) -> int:
    """The first base port whose six nodes and their bus ports are all free on loopback."""
    for base in range(start, stop, 10):
        ports = [base + n for n in range(6)]
        if all(_free(port) and _free(port + BUS_OFFSET) for port in ports):
            return base
    raise RuntimeError(f"no six free ports (and bus ports) between {start} and {stop}")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


@contextmanager
def _choosing_ports() -> Iterator[None]:
    lock = TEMP / "sessionstore-cluster-ports.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Node:
    id: str
    port: int
    primary: bool
    primary_id: str | None
    slots: frozenset[int]


class LocalCluster:
    """3 primaries and 3 replicas on ``base_port`` .. ``base_port + 5``."""

    def __init__(self, first_port: int) -> None:
        """A cluster on the first free base port from ``first_port`` up, chosen at start."""
        self._place(first_port)
        self._clients: dict[int, redis.Redis] = {}

    def _place(self, base_port: int) -> None:
        self.base_port = base_port
        self.url = f"redis+cluster://{HOST}:{base_port}"
        self.directory = TEMP / f"sessionstore-cluster-{base_port}"

    def __repr__(self) -> str:
        return f"LocalCluster(base_port={self.base_port})"

    @contextmanager
    def running(self) -> Iterator[LocalCluster]:
        if shutil.which("redis-server") is None:
            backends.unavailable("redis-server is not installed")
        for attempt in range(3):
            try:
                # One process at a time probes for free ports and starts its cluster there, so
                # two test workers never pick (and clear the files of) the same ports.
                with _choosing_ports():
                    self._place(free_base_port(self.base_port + (10 if attempt else 0)))
                    self._script("start")
                break
            except (AssertionError, subprocess.TimeoutExpired):
                # Something else took a port, or a server did not come up (or not in time):
                # stop whatever of ours started, and try the next free ports.
                self._script("stop", check=False)
                if attempt == 2:
                    raise
        try:
            yield self
        finally:
            for client in self._clients.values():
                client.close()
            self._script("stop")

    def _script(self, command: str, check: bool = True) -> None:
        done = subprocess.run(
            [str(SCRIPT), command, str(self.base_port)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"cluster.sh {command} failed: {done.stdout}{done.stderr}")

    # -- inspection -----------------------------------------------------------------------

    def client(self, port: int) -> redis.Redis:
        """A plain client of one node, for setup and inspection."""
        if port not in self._clients:
            self._clients[port] = redis.Redis(
                host=HOST, port=port, decode_responses=True, socket_timeout=5
            )
        return self._clients[port]

    def nodes(self) -> list[Node]:
        """The topology as the seed node sees it (redis-py parses CLUSTER NODES)."""
        nodes = []
        for address, info in self.client(self.base_port).cluster("nodes").items():
            slots: set[int] = set()
            for first, *last in info["slots"]:
                slots.update(range(int(first), int(last[0] if last else first) + 1))
            nodes.append(
                Node(
                    id=info["node_id"],
                    port=int(address.rsplit(":", 1)[1]),
                    primary="master" in info["flags"],
                    primary_id=None if info["master_id"] == "-" else info["master_id"],
                    slots=frozenset(slots),
                )
            )
        return sorted(nodes, key=lambda node: node.port)

    def primaries(self) -> list[Node]:
        return [node for node in self.nodes() if node.primary]

    def replica_of(self, primary: Node) -> Node:
        return next(node for node in self.nodes() if node.primary_id == primary.id)

    def owner(self, slot: int) -> Node:
        return next(node for node in self.primaries() if slot in node.slots)

    def slot_owners(self) -> dict[int, str]:
        """Slot -> id of the primary serving it."""
        return {slot: node.id for node in self.primaries() for slot in node.slots}

    def wait_until_stable(self, timeout: float = 20) -> None:
        """Until every node is ok, agrees on who owns each slot and who replicates whom,
        and no slot is half moved."""
        deadline = time.monotonic() + timeout
        while not self._stable():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self} did not settle in {timeout} s")
            time.sleep(0.1)

    def _stable(self) -> bool:
        check = subprocess.run(
            ["redis-cli", "--cluster", "check", f"{HOST}:{self.base_port}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0 or "[WARNING]" in check.stdout:
            return False
        return all(self._settled(port) for port in range(self.base_port, self.base_port + 6))

    def _settled(self, port: int) -> bool:
        """The node is ok and sees three replicas: news of every role change has reached it."""
        client = self.client(port)
        replicas = [info for info in client.cluster("nodes").values() if "slave" in info["flags"]]
        return client.cluster("info")["cluster_state"] == "ok" and len(replicas) == 3

    # -- disturbances ---------------------------------------------------------------------

    def fail_over(self, replica: Node, timeout: float = 20) -> None:
        """Promote ``replica`` with CLUSTER FAILOVER and wait until the cluster has settled.

        A manual failover waits for the replica to catch up first, so no write is lost.
        """
        self.client(replica.port).execute_command("CLUSTER FAILOVER")
        deadline = time.monotonic() + timeout
        while self.client(replica.port).execute_command("ROLE")[0] != "master":
            if time.monotonic() > deadline:
                raise AssertionError(f"{replica.port} was not promoted in {timeout} s")
            time.sleep(0.02)
        self.wait_until_stable(timeout)

    def wait_for_replica_acks(self, primary: Node, timeout: float = 10) -> None:
        """Until the primary's replicas have acknowledged everything it has written so far."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.client(primary.port).info("replication")
            replicas = [value for key, value in info.items() if key.startswith("slave")]
            if replicas and all(r["offset"] == info["master_repl_offset"] for r in replicas):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"replicas of {primary.port} did not catch up")
            time.sleep(0.05)

    @contextmanager
    def paused(self, node: Node) -> Iterator[None]:
        """Freeze one of our servers (SIGSTOP by its pid file): it answers and acknowledges
        nothing until the block ends. Keep it short: past the node timeout, it is failed."""
        pid = int((self.directory / f"redis-{node.port}.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def begin_moving(self, slot: int, target: Node, keys: list[str]) -> Node:
        """Open ``slot`` for migration to ``target`` and move only ``keys``; returns the source.

        This is the state redis-cli leaves between two MIGRATE batches: until finish_moving,
        some keys of the slot are on the target and the rest on the source.
        """
        source = self.owner(slot)
        self.client(target.port).cluster("setslot", slot, "importing", source.id)
        self.client(source.port).cluster("setslot", slot, "migrating", target.id)
        self.client(source.port).migrate(HOST, target.port, keys, 0, 5000)
        return source

    def finish_moving(self, slot: int, source: Node, target: Node) -> None:
        """Move the slot's remaining keys and hand the slot to ``target``, as redis-cli does."""
        rest = self.client(source.port).cluster("getkeysinslot", slot, 100_000)
        if rest:
            self.client(source.port).migrate(HOST, target.port, rest, 0, 5000)
        others = [node for node in self.primaries() if node.id not in (source.id, target.id)]
        for node in (target, source, *others):
            self.client(node.port).cluster("setslot", slot, "node", target.id)

    def reshard(self, source: Node, target: Node, slots: int, *, keys_per_move: int = 10) -> None:
        """Move ``slots`` slots (and their keys) from ``source`` to ``target``.

        ``keys_per_move`` is redis-cli's ``--cluster-pipeline``: how many keys one MIGRATE
        moves. A slot with more keys is split between two nodes for a while.
        """
        subprocess.run(
            ["redis-cli", "--cluster", "reshard", f"{HOST}:{self.base_port}"]
            + ["--cluster-from", source.id, "--cluster-to", target.id]
            + ["--cluster-slots", str(slots), "--cluster-pipeline", str(keys_per_move)]
            + ["--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=50,
        )
