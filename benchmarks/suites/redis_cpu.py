"""Redis CPU per operation: what each store operation costs the server, beside a plain floor.

Redis counts, per command, the calls it ran and the microseconds it spent running them
(``INFO commandstats``: ``calls`` and ``usec``). A window snapshots those counters, runs one
operation ``plan.cpu_ops`` times, and snapshots them again; the operation's cost is the usec of
every command it *sends* (EVALSHA for a script; HMGET and ZSCORE for validate's fast path)
over the number of operations. Redis also counts the commands a script runs inside under
their own names, and their time is already in the EVALSHA's: they are shown (calls per
operation), never added. Each floor is plain commands doing the least an operation of that
kind must (HGETALL of the session hash; HSET of the same fields + PEXPIREAT; DEL), measured
the same way, its windows interleaved with the operation's.

The counters are the server's, shared with every other client of that Redis. A window is
*clean* when each command an operation sends was called exactly as often as it sent it, so
no other client used those commands meanwhile; the figures are those of the median clean
window (of the median window, flagged, when none was clean). Redis times each call in whole
microseconds; over hundreds of calls the mean is exact enough. Reading requests and writing
replies are not in these counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import count, cycle
from typing import Any

from sessionstore import _connection
from sessionstore._core.codec import session_fields
from sessionstore._core.tokens import RANDOM_LEN, SESSION_PREFIX

from ..bench import Bench
from ..bulk import check_layout, create_many, delete_matching
from ..workload import (
    COMMON_USER_AGENTS,
    SESSIONS_PER_IP,
    SESSIONS_PER_USER,
    TENANT,
    background,
    ip_address,
    of_user,
)

CPU_TENANT = "cpu"  # the sessions this section writes, deleted at its end
NO_TOUCH = timedelta(days=1)  # longer than any run: no touch falls due
EVERY_TOUCH = timedelta(0)  # a touch on every validation
LIST_USER = 1
LIST_SIZE = 10
CREATE_USER_BASE = 5_000_000
RAW_USER_BASE = 10_000_000  # the floors' own keys, apart from the store's sessions

Counters = dict[str, tuple[int, int]]  # command -> (calls, usec)
Prepare = Callable[[int], Callable[[], object]]  # untimed set-up of n operations -> run them


# -- counters ---------------------------------------------------------------------------------


def command_stats(client: Any) -> Counters:
    """Calls and usec of every command Redis ran since its stats were last reset."""
    info = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(stats["calls"]), int(stats["usec"]))
        for name, stats in info.items()
    }


def command_deltas(before: Counters, after: Counters) -> Counters | None:
    """What ran between two snapshots (INFO left out); None when the stats were reset."""
    if any(name not in after or after[name][0] < calls for name, (calls, _) in before.items()):
        return None
    deltas = {}
    for name, (calls, usec) in after.items():
        was_calls, was_usec = before.get(name, (0, 0))
        if calls > was_calls and name != "info":
            deltas[name] = (calls - was_calls, usec - was_usec)
    return deltas


# -- windows ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Side:
    """An operation or its floor: what it runs, and the commands it sends per operation."""

    label: str
    sends: dict[str, int]  # command -> calls per operation (0: must not be sent)
    prepare: Prepare


@dataclass(frozen=True, slots=True)
class Window:
    ops: int
    sent: Counters  # the side's own commands
    others: dict[str, int]  # calls of every other command: the scripts' (and other clients')
    expected: dict[str, int]

    @property
    def usec_per_op(self) -> float:
        return sum(usec for _, usec in self.sent.values()) / self.ops

    @property
    def stray_calls(self) -> int:
        return sum(abs(self.sent[name][0] - expected) for name, expected in self.expected.items())

    @property
    def clean(self) -> bool:
        return self.stray_calls == 0


@dataclass(frozen=True, slots=True)
class Measure:
    name: str
    script: str | None  # the Lua script the operation runs, if any
    store: Side
    floor: Side


def _window(client: Any, side: Side, ops: int) -> Window | None:
    run = side.prepare(ops)
    before = command_stats(client)
    run()
    deltas = command_deltas(before, command_stats(client))
    if deltas is None:
        return None  # someone reset the stats meanwhile: this window says nothing
    return Window(
        ops,
        {name: deltas.get(name, (0, 0)) for name in side.sends},
        {name: calls for name, (calls, _) in deltas.items() if name not in side.sends},
        {name: per_op * ops for name, per_op in side.sends.items()},
    )


def _summary(side: Side, windows: list[Window]) -> dict[str, Any]:
    clean = [window for window in windows if window.clean]
    ranked = sorted(clean or windows, key=lambda window: window.usec_per_op)
    middle = ranked[(len(ranked) - 1) // 2]  # the lower median: one real window
    ops = middle.ops
    return {
        "label": side.label,
        "usec_per_op": middle.usec_per_op,
        "sends_per_op": {name: calls / ops for name, (calls, _) in middle.sent.items()},
        "usec_per_call": {
            name: usec / calls if calls else None for name, (calls, usec) in middle.sent.items()
        },
        "inside_per_op": {
            name: calls / ops
            for name, calls in sorted(middle.others.items(), key=lambda item: -item[1])
        },
        "ops_per_window": ops,
        "windows": len(windows),
        "clean_windows": len(clean),
        "stray_calls": sum(window.stray_calls for window in windows),
    }


# -- the suite --------------------------------------------------------------------------------


def run(bench: Bench) -> dict[str, Any]:
    if not bench.backend.real or _connection.is_cluster(bench.client):
        return {}  # the embedded server keeps no commandstats; a cluster keeps one per node
    plan, client = bench.plan, bench.client
    raw = bench.raw_client()
    try:
        measures = _Measures(bench, raw).all()
        windows: dict[str, dict[str, list[Window]]] = {
            m.name: {"store": [], "floor": []} for m in measures
        }
        seconds = bench.progress.elapsed()
        for _ in range(plan.cpu_windows):  # interleaved: a busy moment hits every side alike
            for measure in measures:
                for side_name, side in (("store", measure.store), ("floor", measure.floor)):
                    window = _window(client, side, plan.cpu_ops)
                    if window is not None:
                        windows[measure.name][side_name].append(window)
        bench.progress.note(
            f"  {plan.cpu_windows} windows of {plan.cpu_ops:,} operations per side in "
            f"{bench.progress.elapsed() - seconds:.1f}s"
        )
        return {
            "ops_per_window": plan.cpu_ops,
            "windows": plan.cpu_windows,
            "measures": {m.name: _result(bench, m, windows[m.name]) for m in measures},
        }
    finally:
        raw.close()
        delete_matching(client, bench.tenant_pattern(CPU_TENANT))


def _result(bench: Bench, measure: Measure, windows: dict[str, list[Window]]) -> dict[str, Any]:
    if not windows["store"] or not windows["floor"]:
        raise RuntimeError(f"{measure.name}: the stats were reset during every window")
    store = _summary(measure.store, windows["store"])
    floor = _summary(measure.floor, windows["floor"])
    ratio = store["usec_per_op"] / floor["usec_per_op"] if floor["usec_per_op"] else None
    flag = "" if store["clean_windows"] and floor["clean_windows"] else " (other clients!)"
    bench.progress.result(
        f"  {measure.store.label}",
        f"{store['usec_per_op']:6.2f} µs/op   floor {floor['usec_per_op']:6.2f} µs/op   "
        f"{'-' if ratio is None else f'{ratio:.2f}x'}{flag}",
    )
    return {"script": measure.script, "store": store, "floor": floor, "ratio": ratio}


def _repeat(ops: int, call: Callable[[], object]) -> Callable[[], object]:
    def run() -> None:
        for _ in range(ops):
            call()

    return run


class _Measures:
    """Each operation beside its floor, with the data both need (written before the windows)."""

    def __init__(self, bench: Bench, raw: Any) -> None:
        self.bench = bench
        self.raw = raw
        self.keys = bench.keys
        self.probes = bench.probes
        self.next_token = cycle([token for _, token in self.probes]).__next__
        self.next_probe_key = cycle(
            [self.keys.session(TENANT, session.id) for session, _ in self.probes]
        ).__next__
        self.next_probe_id = cycle([session.id for session, _ in self.probes]).__next__
        self.numbers = count()  # sessions the create measure writes
        self.revoked = 0  # background sessions of CPU_TENANT the revoke measure wrote so far
        self.raw_numbers = count()  # keys the floors write
        self.listed = create_many(
            bench.store, of_user(LIST_USER, LIST_SIZE, tenant=CPU_TENANT), keep=True
        )
        template, _ = self.probes[0]
        self.expires = int(template.expires_at.timestamp() * 1000)
        self.raw_fields = ["h", bytes(32), *session_fields(template, self.expires)]

    def all(self) -> list[Measure]:
        hgetall = Side("HGETALL of the same session hash", {"hgetall": 1}, self._hgetall)
        return [
            Measure(
                "validate_steady",
                None,
                Side(
                    "validate, steady state (touch not due)",
                    {"hmget": 1, "zscore": 1, "evalsha": 0},
                    self._validate_steady(),
                ),
                hgetall,
            ),
            Measure(
                "validate_first",
                "validate.lua",
                Side(
                    "validate, first in process (script, no touch)",
                    {"evalsha": 1},
                    self._validate_first,
                ),
                hgetall,
            ),
            Measure(
                "validate_touch",
                "validate.lua",
                Side("validate, touch due (script + touch)", {"evalsha": 1}, self._touching()),
                hgetall,
            ),
            Measure(
                "get",
                "read.lua",
                Side("get (admin read by id)", {"evalsha": 1}, self._get),
                hgetall,
            ),
            Measure(
                "create",
                "create.lua",
                Side("create", {"evalsha": 1}, self._create),
                Side(
                    "HSET of the same fields + PEXPIREAT",
                    {"hset": 1, "pexpireat": 1},
                    self._raw_create,
                ),
            ),
            Measure(
                "revoke",
                "revoke.lua",
                Side("revoke", {"evalsha": 1}, self._revoke),
                Side("DEL of a session hash", {"del": 1}, self._raw_delete),
            ),
            Measure(
                "list_user_sessions_10",
                "list_user.lua",
                Side(
                    f"list_user_sessions, {LIST_SIZE} sessions", {"evalsha": 1}, self._list_user()
                ),
                Side(
                    f"HGETALL x{LIST_SIZE}, pipelined",
                    {"hgetall": LIST_SIZE},
                    self._hgetall_many(),
                ),
            ),
        ]

    # -- validate and get ---------------------------------------------------------------------

    def _validate_steady(self) -> Prepare:
        store = self.bench.store_with(touch_interval=NO_TOUCH)
        for _, token in self.probes:  # the script once per session; the fast path from here
            if store.validate(TENANT, token) is None:
                raise RuntimeError("probe token does not validate: the benchmark data is wrong")
        return lambda ops: _repeat(ops, lambda: store.validate(TENANT, self.next_token()))

    def _validate_first(self, ops: int) -> Callable[[], object]:
        # A store per call knows no session yet; its once-per-store layout check runs here,
        # before the window, so only the validations are counted.
        stores = [self.bench.store_with(touch_interval=NO_TOUCH) for _ in range(ops)]
        for store in stores:
            check_layout(store)
        calls = [(store, self.next_token()) for store in stores]

        def run() -> None:
            for store, token in calls:
                store.validate(TENANT, token)

        return run

    def _touching(self) -> Prepare:
        store = self.bench.store_with(touch_interval=EVERY_TOUCH)
        check_layout(store)  # once per store, not in a window
        return lambda ops: _repeat(ops, lambda: store.validate(TENANT, self.next_token()))

    def _get(self, ops: int) -> Callable[[], object]:
        store = self.bench.store
        return _repeat(ops, lambda: store.get(TENANT, self.next_probe_id()))

    def _hgetall(self, ops: int) -> Callable[[], object]:
        raw = self.raw
        return _repeat(ops, lambda: raw.hgetall(self.next_probe_key()))

    # -- create and revoke --------------------------------------------------------------------

    def _create(self, ops: int) -> Callable[[], object]:
        store, numbers = self.bench.store, self.numbers

        def call() -> object:
            number = next(numbers)
            return store.create(
                CPU_TENANT,
                CREATE_USER_BASE + number // SESSIONS_PER_USER,
                ip_address=ip_address(number // SESSIONS_PER_IP),
                user_agent=COMMON_USER_AGENTS[number % len(COMMON_USER_AGENTS)],
            )

        return _repeat(ops, call)

    def _raw_create(self, ops: int) -> Callable[[], object]:
        raw, keys = self.raw, list(self._raw_keys(ops))

        def run() -> None:
            for key in keys:
                pipe = raw.pipeline(transaction=False)
                pipe.execute_command("HSET", key, *self.raw_fields)
                pipe.execute_command("PEXPIREAT", key, self.expires)
                pipe.execute()

        return run

    def _revoke(self, ops: int) -> Callable[[], object]:
        store, first = self.bench.store, self.revoked
        self.revoked += ops
        created = create_many(store, background(first, first + ops, CPU_TENANT), keep=True)

        def run() -> None:
            revoked = sum(store.revoke(CPU_TENANT, s.user_id, s.id) for s, _ in created)
            if revoked != len(created):
                raise RuntimeError(f"revoke ended {revoked} of {len(created)} live sessions")

        return run

    def _raw_delete(self, ops: int) -> Callable[[], object]:
        raw, keys = self.raw, list(self._raw_keys(ops))
        pipe = raw.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("HSET", key, *self.raw_fields)
            pipe.execute_command("PEXPIREAT", key, self.expires)
        pipe.execute()

        def run() -> None:
            deleted = sum(raw.delete(key) for key in keys)
            if deleted != len(keys):
                raise RuntimeError(f"DEL removed {deleted} of {len(keys)} keys")

        return run

    def _raw_keys(self, ops: int) -> Iterator[str]:
        """Session hash names of the floors' own, beside the store's in CPU_TENANT."""
        for _ in range(ops):
            number = next(self.raw_numbers)
            user_id = RAW_USER_BASE + number // SESSIONS_PER_USER
            bucket = self.keys.bucket_of(CPU_TENANT, user_id)
            session_id = f"{SESSION_PREFIX}{bucket}{number:0{RANDOM_LEN}d}"
            yield self.keys.session(CPU_TENANT, session_id)

    # -- list_user_sessions -------------------------------------------------------------------

    def _list_user(self) -> Prepare:
        store = self.bench.store
        found = store.list_user_sessions(CPU_TENANT, LIST_USER)
        if len(found) != LIST_SIZE:
            raise RuntimeError(f"list_user_sessions found {len(found)} of {LIST_SIZE} sessions")
        return lambda ops: _repeat(ops, lambda: store.list_user_sessions(CPU_TENANT, LIST_USER))

    def _hgetall_many(self) -> Prepare:
        raw = self.raw
        keys = [self.keys.session(CPU_TENANT, session.id) for session, _ in self.listed]

        def call() -> object:
            pipe = raw.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            return pipe.execute()

        return lambda ops: _repeat(ops, call)
