"""SessionStore: the synchronous face of the store. It only runs what ``_core`` decides."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any, Self

from redis.exceptions import RedisError, ResponseError

from . import _connection
from ._base import BaseStore, settled
from ._core import inputs
from ._core.binding import Attempt, Binder, BindingTerms, Challenge, CookieCheck
from ._core.events import Event, EventPage, Tail
from ._core.flows import Batch, Call, Command, Flow, ScriptCall, T, wire_args
from ._core.kinds import Reason
from ._core.scripts import Script
from ._core.sweeping import Sweep
from ._subscribers import Subscriber
from .model import Page, Session

__all__ = ["SessionStore"]


class SessionStore(BaseStore):
    """Login sessions in Redis. With no client, runs on the embedded in-process server.

    >>> store = SessionStore()
    >>> session, token = store.create("acme-corp", 456, ip_address="203.0.113.45",
    ...                               user_agent="curl/8.0", auth_method="password")
    >>> store.validate("acme-corp", token).id == session.id
    True
    """

    _connect = staticmethod(_connection.sync_client)

    def _follow_changes(self) -> None:
        cache = self._core.near
        if cache is not None:
            self._subscriber = Subscriber.start_all(cache, self._client, self.config.prefix)

    def close(self) -> None:
        """Stop the near cache's subscribers and release the connections this store opened."""
        for subscriber in self._subscriber or ():
            subscriber.stop()
        for subscriber in self._subscriber or ():
            subscriber.join(timeout=5)
        _connection.close_lanes(self._client)
        self._client.close()
        # redis-py leaves a pool it was handed open; the pools from _connection.py are ours.
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- operations (the contracts live in _core) --------------------------------------------

    def create(
        self,
        tenant: str,
        user_id: int,
        *,
        ip_address: str,
        user_agent: str,
        auth_method: str = "password",
        mfa_verified: bool = False,
        actor: str = "user",
    ) -> tuple[Session, str]:
        """Start a session; returns it and its bearer token (shown once, never stored)."""
        return self._drive(
            "create",
            self._core.create(
                tenant,
                user_id,
                ip_address=ip_address,
                user_agent=user_agent,
                auth_method=auth_method,
                mfa_verified=mfa_verified,
                actor=actor,
            ),
        )

    def validate(self, tenant: str, token: object) -> Session | None:
        """The token's live session, recording activity; None if unknown, expired or revoked."""
        answer, flow = self._validation(tenant, token)
        return answer if flow is None else self._drive("validate", flow)

    def get(self, tenant: str, session_id: str) -> Session | None:
        """The live session with this id, without recording activity; None if there is none.

        For admin views: it never extends a session. Raises InvalidSessionId for a malformed id."""
        return self._drive("get", self._core.get(tenant, session_id))

    def list_user_sessions(self, tenant: str, user_id: int) -> list[Session]:
        """Every live session of the user, most recently active first (at most
        ``max_sessions_per_user``, read from the user's own index in one script call)."""
        return self._drive("list_user_sessions", self._core.list_user_sessions(tenant, user_id))

    def list_sessions(
        self,
        tenant: str,
        *,
        user_id: int | None = None,
        ip_address: str | None = None,
        limit: int = inputs.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """One page of the tenant's live sessions, newest first: all of them, one user's, or
        those from one IP address. ``cursor`` is a previous page's ``next_cursor``; a page costs
        at most ``listing.MAX_ROUNDS`` round trips whatever the tenant's size, and may end early
        with a cursor to go on from. Raises InvalidCursor for a cursor it did not issue."""
        return self._drive(
            "list_sessions",
            self._core.list_sessions(
                tenant, user_id=user_id, ip_address=ip_address, limit=limit, cursor=cursor
            ),
        )

    def revoke(self, tenant: str, user_id: int, session_id: str, *, actor: str = "system") -> bool:
        """End one session at once; ``actor`` says who, in its event (events.py)."""
        return self._drive("revoke", self._core.revoke(tenant, user_id, session_id, actor=actor))

    def revoke_all(
        self,
        tenant: str,
        user_id: int,
        *,
        except_session_id: str | None = None,
        actor: str = "system",
    ) -> int:
        """End every session of the user at once (one script, one step), except
        ``except_session_id`` if given (\"sign out my other devices\"); returns how many ended.
        Raises RevocationNotDurable when the change may not survive a failover."""
        return self._drive(
            "revoke_all",
            self._core.revoke_all(
                tenant, user_id, except_session_id=except_session_id, actor=actor
            ),
        )

    def revoke_sessions(
        self,
        tenant: str,
        *,
        ip_address: str | None = None,
        user_id: int | None = None,
        all_sessions: bool = False,
        actor: str = "system",
    ) -> int:
        """End every live session from ``ip_address`` and/or of ``user_id``; returns how many.

        With neither filter it refuses (InvalidArgument) unless ``all_sessions=True``.
        """
        return self._drive(
            "revoke_sessions",
            self._core.revoke_sessions(
                tenant,
                ip_address=ip_address,
                user_id=user_id,
                all_sessions=all_sessions,
                actor=actor,
            ),
        )

    def mark_mfa_verified(self, tenant: str, session_id: str, *, actor: str = "user") -> bool:
        """Record that the session passed a second factor; False if it is no longer live.
        Validations see it at once (the near cache is told, like a revocation)."""
        return self._drive(
            "mark_mfa_verified",
            self._core.update(tenant, session_id, mfa_verified=True, actor=actor),
        )

    def enable_events(self) -> None:
        """Record session events from now on, for every store under this prefix: each reads
        the setting when it starts and at least every 10 s (``sessionstore serve --events``
        turns it on; ``StoreConfig(events=True)`` does too, when its store starts)."""
        self._drive("enable_events", self._core.set_events(True))

    def disable_events(self) -> None:
        """Stop recording events, for every store under this prefix (within 10 s); what is
        recorded stays until its retention ends. A store configured with ``events=True``
        turns them on again when it starts."""
        self._drive("disable_events", self._core.set_events(False))

    def events_enabled(self) -> bool:
        """Whether this prefix's deployment records events (asks Redis)."""
        return self._drive("events_enabled", self._core.events_enabled())

    def sweep_expired(self) -> int:
        """Drop, and record as ``session.expired``, the sessions that ended while nobody asked
        about them, in every bucket that may hold sessions (the registry, never the keyspace);
        returns the buckets swept. ``sessionstore serve --events`` runs it every minute; an
        embedding service may run it likewise."""
        if not self._drive("sweep_expired", self._core.registry_seeded()):
            self._seed_registry()
        return self._drive("sweep_expired", self._core.sweep_registered())

    def _seed_registry(self) -> None:
        """Once per prefix: register the buckets written before the registry existed."""
        chunks = Sweep()  # the SCAN's keys, in chunks of one round trip each
        pattern = self._core.keys.every_created_index()
        with _connection.translated(self._redis_failed):  # the SCAN; each batch counts itself
            for key in self._client.scan_iter(match=pattern, count=1000):
                if chunk := chunks.found(key):
                    self._drive("sweep_expired", self._core.seed_registry(chunk, done=False))
        rest = chunks.rest() or []
        self._drive("sweep_expired", self._core.seed_registry(rest, done=True))

    def migrate(self) -> int:
        """Bring this prefix's keys to this version's layout (``sessionstore migrate``): mark
        it, then put every bucket's indexes that layout 2 kept whole into chunks, in bounded
        steps that other processes' scripts interleave with. Safe to stop and run again;
        returns the buckets checked (0: an empty prefix)."""
        if not self._drive("migrate", self._core.begin_migration()):
            return 0
        pattern = self._core.keys.every_created_index()
        with _connection.translated(self._redis_failed):
            indexes = [key for key in self._client.scan_iter(match=pattern, count=1000)]
        for index in indexes:
            name = index.decode() if isinstance(index, bytes) else str(index)
            while self._drive("migrate", self._core.rechunk(name)):
                pass
        return len(indexes)

    def events(
        self,
        tenant: str,
        *,
        after: str | None = None,
        before: str | None = None,
        order: str = "asc",
        limit: int = inputs.DEFAULT_LIMIT,
        types: Sequence[str] | None = None,
        user_id: int | None = None,
        ip_address: str | None = None,
        session_id: str | None = None,
    ) -> EventPage:
        """A page of the tenant's session events: oldest first after the cursor ``after``, or
        with ``order="desc"`` newest first before the cursor ``before``. Filters combine:
        ``types``, ``user_id``, ``ip_address`` (normalised as list_sessions' is), ``session_id``.

        A page reads at most events.PAGE_BUDGET stream entries either way: with a sparse
        filter it may hold fewer than ``limit`` events (even none) and a ``next_cursor`` to go
        on from (as ``after``, or as ``before`` newest first)."""
        return self._drive(
            "events",
            self._core.events(
                tenant,
                after=after,
                before=before,
                order=order,
                limit=limit,
                types=types,
                user_id=user_id,
                ip_address=ip_address,
                session_id=session_id,
            ),
        )

    def tail(self, tenant: str, *, after: str | None = None, poll: float = 0.5) -> Iterator[Event]:
        """Every event after ``after`` (by default, after the newest stored when this is
        called, however late the first read), as it comes; polls every ``poll`` seconds when
        there is nothing new."""
        tail = Tail(
            after if after is not None else self._drive("tail", self._core.newest_event(tenant))
        )
        return self._follow(tenant, tail, poll)

    def _follow(self, tenant: str, tail: Tail, poll: float) -> Iterator[Event]:
        while True:
            yield from tail.follow(self.events(tenant, after=tail.cursor))
            if tail.caught_up:
                time.sleep(poll)

    # -- device binding (DBSC: _core/binding.py; the middleware drives these) -----------------

    @cached_property
    def _binder(self) -> Binder:
        return Binder(self._core)

    def begin_binding(self, tenant: str, token: object, terms: BindingTerms) -> Challenge | None:
        """A single-use registration challenge for the token's live, unbound session (the
        ``Secure-Session-Registration`` header of its login response); None when there is none."""
        return self._drive("begin_binding", self._binder.begin(tenant, token, terms))

    def register_binding(
        self, tenant: str, token: object, proof: str, terms: BindingTerms
    ) -> Attempt:
        """Verify a DBSC registration proof and bind the token's session to its key, in one
        step with the challenge it signed. Raises InvalidProof for a malformed proof."""
        return self._drive("register_binding", self._binder.register(tenant, token, proof, terms))

    def refresh_binding(
        self,
        tenant: str,
        token: object,
        session_id: str,
        proof: str | None,
        terms: BindingTerms,
    ) -> Attempt:
        """A DBSC refresh of the bound session ``session_id``: a challenge without a proof, or
        the proof checked against the session's key. Raises InvalidProof for a malformed proof."""
        return self._drive(
            "refresh_binding",
            self._binder.refresh(tenant, token, session_id, proof, terms),
        )

    def bound_cookie(self, tenant: str, session_id: str, seconds: int) -> str:
        """A bound cookie's value for the session, valid ``seconds`` from now."""
        return self._drive("bound_cookie", self._binder.cookie(tenant, session_id, seconds))

    def check_bound_cookie(self, tenant: str, session_id: str, value: str | None) -> CookieCheck:
        """Whether ``value`` is a live bound cookie of the session; no Redis call once this
        process has read the deployment's bound cookie secret."""
        return self._drive(
            "check_bound_cookie", self._binder.check_cookie(tenant, session_id, value)
        )

    def record_binding_failure(
        self, tenant: str, token: object, reason: Reason, terms: BindingTerms
    ) -> bool:
        """Record ``session.binding_failed`` for the token's live session (and revoke it when
        ``terms.revoke_on_failure``); False when it has no live session."""
        return self._drive(
            "record_binding_failure",
            self._binder.record_failure(tenant, token, reason, terms),
        )

    # -- I/O ----------------------------------------------------------------------------------

    def _drive(self, operation: str, flow: Flow[T]) -> T:
        if self._metrics is None:
            return self._run_flow(flow)
        with self._metrics.operation(operation):
            return self._run_flow(flow)

    def _run_flow(self, flow: Flow[T]) -> T:
        try:
            batch = next(flow)
            while True:
                batch = flow.send(self._run(batch))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _run(self, batch: Batch) -> list[Any]:
        try:
            if len(batch) == 1:
                return [self._call_alone(batch[0])]
            if self._raw:
                commands = [wire_args(call) for call in batch]
                replies = _connection.run_raw(self._client, commands, self._busy_poll)
            else:
                pipe = self._client.pipeline() if self._cluster else self._client.pipeline(False)
                for call in batch:
                    pipe.execute_command(*wire_args(call))
                replies = pipe.execute(raise_on_error=False)
            if settled(replies):
                return replies  # the usual batch: nothing to settle
            return [self._settle(call, reply) for call, reply in zip(batch, replies, strict=True)]
        except RedisError as error:
            raise _connection.translate(error) from error

    def _call_alone(self, call: Call) -> Any:
        try:
            return self._call(call)
        except ResponseError as error:
            if isinstance(call, Command) and call.best_effort:
                return error  # refused, as in a pipeline: the flow decides what it means
            raise

    def _call(self, call: Call) -> Any:
        if isinstance(call, Command):
            return self._client.execute_command(*call.args, **self._route(call))
        evalsha = (call.script.sha, len(call.keys), *call.keys, *call.args)
        retry = _connection.ScriptRetry()
        while True:
            try:
                return self._client.evalsha(*evalsha)
            except ResponseError as error:
                pause = retry.after(error)
            if pause is None:
                self._client.script_load(call.script.source)
            else:
                time.sleep(pause)

    def _settle(self, call: Call, reply: Any) -> Any:
        if _connection.call_again(call, reply):
            return self._call(call)
        if isinstance(reply, Exception) and not (isinstance(call, Command) and call.best_effort):
            raise reply
        return reply

    # -- for tools built on the store --------------------------------------------------------

    def newest_event_id(self, tenant: str) -> str | None:
        """The id of the tenant's newest stored event, None when it has none: a cursor for
        "only what comes from now on" (``events(after=...)``; what ``tail`` starts after)."""
        return self._drive("newest_event_id", self._core.newest_event(tenant))

    def run_script(self, script: Script, keys: Sequence[str], *args: object) -> Any:
        """Run one of sessionstore's own Lua scripts (``_core.scripts``) on keys of one hash
        slot, as the store runs its own: loaded after NOSCRIPT, run again while its slot moves
        between cluster nodes (so it must be safe to run twice). Returns the script's reply; a
        Redis failure raises StoreUnavailable and counts in the store's metrics."""
        with _connection.translated(self._redis_failed):
            return self._call(ScriptCall(script, tuple(keys), args))
