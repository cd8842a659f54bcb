"""Device-bound sessions (DBSC): what binding costs Redis on the hot path, and what a refresh costs.

- **validate, bound beside unbound**: the Redis CPU of a bound session's validation (with its
  bound cookie checked, which asks Redis nothing) beside an unbound session's, measured as the
  Redis CPU section measures (``INFO commandstats`` windows, the two sides interleaved, the
  median clean window): in steady state (HMGET of the MOVING fields and ZSCORE) and with a
  touch due (validate.lua). The target is a ratio of at most 1.1.
- **the refresh endpoint**: one call of the WSGI middleware's refresh endpoint answering a
  signed proof over the challenge it handed out last (the key known to the process: one
  prove.lua call), its latency in process (p50, p99; the proof is signed before each call and
  not timed), its Redis CPU per call, and the 403 that hands out a challenge.

Standalone Redis only (the embedded server keeps no commandstats; a cluster keeps one per node),
like the Redis CPU section. ``python -m benchmarks --quick --only device_bound`` runs it alone.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from itertools import cycle
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sessionstore import SessionStore, _connection
from sessionstore._core.binding import BindingTerms, Outcome
from sessionstore.middleware import wsgi
from sessionstore.middleware.policy import DeviceBinding

from .bench import Bench
from .bulk import check_layout, delete_matching
from .suites.redis_cpu import Side, Window, _summary, _window
from .timing import Effort, compare_prepared

TENANT = "dbsc"
SESSIONS = 200  # of each kind: bound, unbound
NO_TOUCH = timedelta(days=1)
EVERY_TOUCH = timedelta(0)
TERMS = BindingTerms()


def run(bench: Bench) -> dict[str, Any]:
    if not bench.backend.real or _connection.is_cluster(bench.client):
        return {}
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        bound, unbound = _sessions(bench.store, key)
        results = {
            "validate": _validate_cpu(bench, bound, unbound),
            "refresh": _refresh(bench, key, bound[0]),
        }
        steady = results["validate"]["steady"]
        bench.progress.result(
            "  bound / unbound, steady state",
            f"{steady['ratio']:.2f}x (target at most 1.1x)" if steady["ratio"] else "-",
        )
        return results
    finally:
        delete_matching(bench.client, bench.tenant_pattern(TENANT))


# -- the sessions -----------------------------------------------------------------------------


def _sessions(store: SessionStore, key: Any) -> tuple[list[tuple[Any, str]], list[tuple[Any, str]]]:
    bound, unbound = [], []
    for number in range(SESSIONS * 2):
        session, token = store.create(
            TENANT, number, ip_address="203.0.113.7", user_agent="Mozilla/5.0 bench"
        )
        if number % 2:
            unbound.append((session, token))
            continue
        challenge = store.begin_binding(TENANT, token, TERMS)
        assert challenge is not None
        signed = _proof(key, challenge.value, registration=True)
        if store.register_binding(TENANT, token, signed, TERMS).outcome is not Outcome.PROVEN:
            raise RuntimeError("a benchmark session did not bind")
        bound.append((session, token))
    return bound, unbound


# -- validate ---------------------------------------------------------------------------------


def _validate_cpu(
    bench: Bench, bound: list[tuple[Any, str]], unbound: list[tuple[Any, str]]
) -> dict[str, Any]:
    plan, client = bench.plan, bench.client
    measures = {}
    for name, interval, sends in (
        ("steady", NO_TOUCH, {"hmget": 1, "zscore": 1, "evalsha": 0}),
        ("touch", EVERY_TOUCH, {"evalsha": 1}),
    ):
        sides = {
            "bound": Side(
                f"validate + bound cookie, bound session ({name})",
                sends,
                _validating(bench, interval, bound, with_cookie=True),
            ),
            "unbound": Side(
                f"validate, unbound session ({name})",
                sends,
                _validating(bench, interval, unbound, with_cookie=False),
            ),
        }
        windows: dict[str, list[Window]] = {side: [] for side in sides}
        for _ in range(plan.cpu_windows):  # interleaved: a busy moment hits both alike
            for side_name, side in sides.items():
                window = _window(client, side, plan.cpu_ops)
                if window is not None:
                    windows[side_name].append(window)
        summary = {side: _summary(sides[side], windows[side]) for side in sides}
        ratio = summary["bound"]["usec_per_op"] / summary["unbound"]["usec_per_op"]
        bench.progress.result(
            f"  validate ({name}) Redis CPU",
            f"bound {summary['bound']['usec_per_op']:6.2f} µs/op   unbound "
            f"{summary['unbound']['usec_per_op']:6.2f} µs/op   {ratio:.2f}x",
        )
        measures[name] = {**summary, "ratio": ratio}
    return measures


def _validating(
    bench: Bench, interval: timedelta, sessions: list[tuple[Any, str]], *, with_cookie: bool
) -> Callable[[int], Callable[[], object]]:
    store = bench.store_with(touch_interval=interval)
    check_layout(store)
    cookies = {}
    for session, token in sessions:  # the script once per session; the fast path from here
        if store.validate(TENANT, token) is None:
            raise RuntimeError("a benchmark session does not validate")
        cookies[session.id] = store.bound_cookie(TENANT, session.id, 3600)
    following = cycle(sessions).__next__

    def validate() -> None:
        session, token = following()
        found = store.validate(TENANT, token)
        if with_cookie and found is not None and found.device_bound:
            store.check_bound_cookie(TENANT, session.id, cookies[session.id])

    def prepare(ops: int) -> Callable[[], object]:
        def run() -> None:
            for _ in range(ops):
                validate()

        return run

    return prepare


# -- refresh ----------------------------------------------------------------------------------


class _Refresher:
    """A browser's side of refreshes through the WSGI middleware, called directly."""

    def __init__(self, store: SessionStore, key: Any, session: Any, token: str) -> None:
        self.key = key
        self.session_id = session.id
        self.cookie = f"sessionstore={token}"
        self.app = wsgi.SessionMiddleware(
            _nothing, store, TENANT, device_bound=DeviceBinding(), secure_cookie=False
        )
        self.challenge: str | None = None
        self.status = ""

    def environ(self, proof: str | None) -> dict[str, Any]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": DeviceBinding().refresh_path,
            "HTTP_COOKIE": self.cookie,
            "HTTP_SEC_SECURE_SESSION_ID": f'"{self.session_id}"',
        }
        if proof is not None:
            environ["HTTP_SECURE_SESSION_RESPONSE"] = f'"{proof}"'
        return environ

    def post(self, environ: dict[str, Any]) -> None:
        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            self.status = status
            for name, value in headers:
                if name == "secure-session-challenge":
                    self.challenge = value.split('"')[1]

        b"".join(self.app(environ, start_response))

    def signed(self) -> Callable[[], object]:
        """A refresh with a proof over the last challenge (signed here, untimed)."""
        if self.challenge is None:
            self.post(self.environ(None))
        assert self.challenge is not None
        environ = self.environ(_proof(self.key, self.challenge, registration=False))
        return lambda: self.post(environ)


def _refresh(bench: Bench, key: Any, bound: tuple[Any, str]) -> dict[str, Any]:
    session, token = bound
    store = bench.store_with()
    check_layout(store)
    refresher = _Refresher(store, key, session, token)
    refresher.signed()()  # the key is read once, then known to the process
    if not refresher.status.startswith("200"):
        raise RuntimeError(f"a refresh answered {refresher.status}")
    plan = bench.plan
    effort = Effort(runs=plan.steady.runs, seconds=plan.steady.seconds, min_calls=20)
    bench.progress.note("  the refresh endpoint, in process (WSGI):")
    measured = compare_prepared(
        {
            "refresh with a proof (200, new bound cookie)": refresher.signed,
            "refresh without one (403 and a challenge)": lambda: (
                lambda: refresher.post(refresher.environ(None))
            ),
        },
        effort,
    )
    latency = {name: bench.report(f"  {name}", stats) for name, stats in measured.items()}
    side = Side("refresh with a proof", {"evalsha": 1}, _refreshing(refresher))
    windows = [w for _ in range(plan.cpu_windows) if (w := _window(bench.client, side, 200))]
    cpu = _summary(side, windows)
    bench.progress.result("  refresh Redis CPU", f"{cpu['usec_per_op']:6.2f} µs/op (prove.lua)")
    return {"latency": latency, "redis_cpu": cpu}


def _refreshing(refresher: _Refresher) -> Callable[[int], Callable[[], object]]:
    def prepare(ops: int) -> Callable[[], object]:
        def run() -> None:
            for _ in range(ops):
                refresher.signed()()

        return run

    return prepare


def _nothing(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("204 No Content", [])
    return []


# -- proofs (the spec's JWS, signed here with cryptography) ------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _proof(key: Any, challenge: str, *, registration: bool) -> str:
    header: dict[str, Any] = {"alg": "ES256", "typ": "dbsc+jwt"}
    if registration:
        numbers = key.public_key().public_numbers()
        header["jwk"] = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
    signing = (
        _b64(json.dumps(header).encode()) + "." + _b64(json.dumps({"jti": challenge}).encode())
    )
    r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
    return signing + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
