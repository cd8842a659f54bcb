"""How much each run measures: the full run, the quick run, and their embedded variants."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .timing import Effort


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    # Sessions in Redis at which the listing and revoking measures are repeated.
    totals: tuple[int, ...]
    # Sessions of the mix written to measure memory, by the store and as blobs.
    memory_sessions: int
    # The adversarial listing: background sessions of each tenant, and one user's logins.
    adversary_background: int
    adversary_logins: int
    # Cheap operations (validate, create, device parse, peers): time-boxed runs.
    steady: Effort
    # Listings and revokes, one call per timed sample, at every total.
    scaling: Effort
    # The SCAN-based floors: slow at large totals, so at least one call per run.
    naive: Effort
    list_sizes: tuple[int, ...] = (1, 10, 100)
    revoke_sizes: tuple[int, ...] = (1, 100, 1_000, 10_000)
    concurrency: int = 64
    page_size: int = 100
    page_depth: int = 10
    # Sessions whose tokens validate and peer loads cycle through.
    probe_sessions: int = 1_000
    # Redis CPU per operation (INFO commandstats deltas): operations per window, and windows
    # (each operation and its floor once per window, interleaved).
    cpu_ops: int = 2_000
    cpu_windows: int = 5
    # The scale section's one tenant of the mix, grown through these sizes: memory per
    # session at each of the first, validate (fresh processes, uniform and Zipf) at each of
    # the second, the sweep at the largest.
    scale_memory_totals: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    scale_validate_totals: tuple[int, ...] = (100_000, 1_000_000)
    # The cluster section: logins touched and revoked while the bus is counted, and sessions
    # revoked while another process validates them from its near cache.
    cluster_changes: int = 200
    cluster_visibility_trials: int = 300

    @property
    def full(self) -> bool:
        return self.name == "full"

    def embedded(self) -> Plan:
        """The embedded server runs Lua in Python (~1k creates/s): the same measures, smaller."""
        return replace(
            self,
            totals=(2_000, 10_000) if self.full else (2_000, 5_000),
            revoke_sizes=tuple(size for size in self.revoke_sizes if size <= 1_000),
            probe_sessions=200,
        )


FULL = Plan(
    name="full",
    totals=(10_000, 100_000, 1_000_000),
    memory_sessions=10_000,
    adversary_background=5_000,
    adversary_logins=30_000,
    steady=Effort(runs=5, seconds=2.0, min_calls=20),
    scaling=Effort(runs=5, seconds=0.5, min_calls=1, max_calls=2_000),
    naive=Effort(runs=3, seconds=0.5, min_calls=1, max_calls=200),
)

QUICK = Plan(
    name="quick",
    totals=(5_000, 25_000),  # two sizes, small: quick runs check the suites run, not figures
    memory_sessions=10_000,
    adversary_background=3_000,
    adversary_logins=3_000,
    steady=Effort(runs=3, seconds=0.3, min_calls=10),
    scaling=Effort(runs=3, seconds=0.1, min_calls=1, max_calls=500),
    naive=Effort(runs=2, seconds=0.0, min_calls=1),
    cpu_ops=500,
    cpu_windows=3,
    scale_memory_totals=(1_000, 5_000),
    scale_validate_totals=(5_000,),
    cluster_changes=50,
    cluster_visibility_trials=50,
)
