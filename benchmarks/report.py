"""The results as JSON and as markdown tables (the run's own file and RESULTS.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sessionstore._core.operations import FIXED_PARTS

from .suites.memory import REMEMBERED
from .suites.peers import THREADED
from .suites.scale import encoding_counts
from .targets import FLAT_TOLERANCE

LOADING = (
    "Sessions were written through the store's own create path: the benchmark starts one "
    "`_core` create flow per session (the same Lua script, indexes and layout as "
    "`store.create`) and sends the batches of 400 flows in one pipeline (`benchmarks/bulk.py`), "
    "so loading shares round trips but nothing else. The background has 4 sessions per user "
    "and 200 per IP address, with 48 real-browser user agents of 118 bytes on average; the "
    "probes (users with 1, 10 and 100 sessions, 1,050 sessions from one IP address, the users "
    "whose sessions revoke_all removes) are the same at every total, so only the data around "
    "them grows. revoke_all's user is re-created, untimed, before each timed call."
)
METHOD = (
    "Every figure is from repeated runs in this one process: throughput is the median of the "
    "runs' operations per second, latency p50/p99 are over all timed calls of the runs. Each "
    "floor ran in the same run on the same Redis with the same connection settings "
    "(`sessionstore._connection`). The naive floors find keys with SCAN MATCH over the whole "
    'database, which also holds the keys of whoever else uses that Redis (see "keys in the '
    'database"). "Flat" means the p50 at the largest total is at most '
    f"{FLAT_TOLERANCE}x the p50 at the smallest. Targets are reported, never asserted."
)


def write_json(run: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def markdown(run: dict[str, Any], chart: str | None) -> str:
    lines = [
        f"# sessionstore benchmarks: {run['mode']} run of {run['date']}",
        "",
        f"Command: `{run['command']}`; took {run['duration_s'] / 60:.1f} min.",
        "",
        *_machine(run["machine"]),
        "## How it was measured",
        "",
        LOADING,
        "",
        METHOD,
        "",
    ]
    for name, results in run["backends"].items():
        lines += _backend(name, results)
    if chart:
        lines += ["## Latency vs data size", "", f"![latency vs data size]({chart})", ""]
    return "\n".join(lines)


def _machine(machine: dict[str, Any]) -> list[str]:
    packages = machine["packages"]
    server = machine.get("redis_server") or {}
    listpack = server.get("hash_max_listpack", {})
    peers = ", ".join(
        f"{name} {packages[name]}"
        for name in ("Flask-Session", "django-redis", "Django", "starsessions")
        if packages.get(name)
    )
    rows = [
        ("CPU", f"{machine['cpu']} ({machine['cores']} cores, shared with other work)"),
        ("Memory", f"{machine['memory_gib']} GiB"),
        ("OS", machine["os"]),
        ("Python", machine["python"]),
        ("Redis", f"{server.get('version')} ({server.get('mode')}), loopback; {_pairs(listpack)}"),
        (
            "redis-py / hiredis",
            f"{packages.get('redis')} / {packages.get('hiredis')} "
            f"(hiredis parser {'on' if machine['hiredis_parser'] else 'off'})",
        ),
        ("sessionstore", str(packages.get("sessionstore"))),
        ("Peers", peers or "not installed"),
    ]
    return ["## Machine", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]


def _backend(name: str, results: dict[str, Any]) -> list[str]:
    lines = [f"## {name} ({results['server']})", ""]
    if results.get("targets"):
        lines += _targets(results["targets"])
    if "validate" in results:
        lines += _validate(results["validate"])
    if "create" in results:
        lines += _table(
            "create",
            ["measure", "ops/s", "p50 ms", "p99 ms"],
            [[what, *_figures(stats)] for what, stats in results["create"].items()],
        )
    if results.get("redis_cpu"):
        lines += _redis_cpu(results["redis_cpu"])
    if results.get("scaling"):
        lines += _scaling(results["scaling"])
    if results.get("memory"):
        lines += _memory(results["memory"])
    if results.get("adversarial"):
        lines += _adversarial(results["adversarial"])
    if results.get("device"):
        lines += _device(results["device"])
    if results.get("peers"):
        lines += _peers(results["peers"])
    if results.get("near_cache"):
        lines += _near_cache(results["near_cache"])
    if results.get("scale"):
        lines += _scale(results["scale"])
    if "cluster" in results:
        lines += _cluster(results["cluster"])
    return lines


def _cluster(cluster: dict[str, Any]) -> list[str]:
    if not cluster:
        return ["### cluster", "", "Not measured: no Redis Cluster answered (`--cluster-url`).", ""]
    bus, seen = cluster["bus"], cluster["visibility"]
    per = bus["per_login_touch_revoke"]
    lines = _table(
        f"cluster ({cluster['url']}, {bus['nodes']} nodes): cluster-bus messages per change "
        f"({bus['changes']:,} logins, each touched then revoked; CLUSTER INFO on every node)",
        ["classic PUBLISH messages", "sharded messages (to the shard's replicas)"],
        [[f"{per['publish']:.2f}", f"{per['publishshard']:.2f}"]],
    )
    lines += _table(
        f"cluster: near-cache revocation visibility ({seen['seen']} of {seen['trials']} "
        f"sessions; the other process validated {seen['B validations/s']:,.0f} times a second)",
        ["p50 ms", "p99 ms", "max ms"],
        [[f"{seen['p50 ms']:.2f}", f"{seen['p99 ms']:.2f}", f"{seen['max ms']:.2f}"]],
    )
    return lines


def _scale(scale: dict[str, Any]) -> list[str]:
    sizes = scale["sizes"]
    return [
        *_scale_memory([point for point in sizes if "memory" in point]),
        *_scale_validate(scale, [point for point in sizes if "validate" in point]),
        *_scale_sweep(scale["sweep"]),
        *_scale_jwt(scale["near_cache_vs_jwt"]),
    ]


def _scale_memory(points: list[dict[str, Any]]) -> list[str]:
    rows = [
        [
            f"{point['sessions']:,}",
            f"{point['memory']['bytes_per_session']:,.0f}",
            *(
                f"{encoding_counts(index['encodings'])}; "
                f"{index['memory_usage_per_session']:.1f} B per session"
                for index in point["memory"]["indexes"].values()
            ),
            f"{point['fill']['sessions_per_s']:,.0f}/s ({point['fill']['seconds']:.1f} s)",
        ]
        for point in points
    ]
    header = ["sessions", "bytes per session", "`t` buckets", "`i` buckets", "filled at"]
    title = (
        "scale: memory per session as one tenant of the issue's mix grows (default config; "
        "used_memory delta since the tenant was empty; encodings of the buckets' indexes)"
    )
    return _table(title, header, rows)


def _scale_validate(scale: dict[str, Any], points: list[dict[str, Any]]) -> list[str]:
    rows = []
    for point in points:
        for pattern, measured in point["validate"].items():
            cpu, throughput = measured["cpu"], measured["throughput"]
            store, floor = cpu["store"], cpu["floor"]
            validate, hgetall = throughput["validate"], throughput["HGETALL of the same hash"]
            rows.append(
                [
                    f"{point['sessions']:,}",
                    pattern,
                    f"{store['usec_per_op']:.2f}",
                    f"{floor['usec_per_op']:.2f}",
                    f"{cpu['ratio']:.2f}x",
                    f"{cpu['script_share']:.2%}",
                    f"{cpu['round_trips_per_validate']:.2f}",
                    f"{cpu['fixed_parts_hit_share']:.1%}",
                    f"{validate['ops_per_s']:,.0f} ({validate['p50_ms']:.3f} ms)",
                    f"{hgetall['ops_per_s']:,.0f} ({hgetall['p50_ms']:.3f} ms)",
                    f"{min(store['clean_windows'], floor['clean_windows'])} of {store['windows']}",
                ]
            )
    header = [
        "sessions",
        "access",
        "Redis µs per validate",
        "HGETALL µs",
        "ratio",
        "ran a script",
        "round trips",
        "LRU knew the session",
        "validate ops/s (p50), 1 client",
        "HGETALL ops/s (p50)",
        "clean windows",
    ]
    title = (
        f"scale: validate in a fresh process (fixed-parts LRU of {scale['fixed_parts']:,}, "
        f"empty at start), uniform and Zipf (s = {scale['zipf_s']}) access, touch interval "
        f"{scale['touch_interval_s']:,.0f} s; Redis CPU from `INFO commandstats`"
    )
    return _table(title, header, rows)


def _scale_sweep(sweeps: list[dict[str, Any]]) -> list[str]:
    rows = [
        [
            sweep["label"],
            sweep["walks"],
            f"{sweep['seconds'] * 1000:,.1f}",
            f"{sweep['round_trips']:,}",
            f"{sweep['commands'].get('scan', {}).get('sent', 0):,}",
            f"{sweep['commands'].get('evalsha', {}).get('sent', 0):,}",
            _sweep_cpu(sweep),
            f"{sweep['buckets_swept']:,}",
        ]
        for sweep in sweeps
    ]
    header = ["sweep", "walks", "wall ms", "round trips", "SCAN", "EVALSHA"]
    header.append("Redis CPU ms (SCAN + EVALSHA)")
    header.append("buckets")
    title = f"scale: `sweep_expired()` at {sweeps[0]['sessions']:,} sessions"
    return _table(title, header, rows)


def _sweep_cpu(sweep: dict[str, Any]) -> str:
    ours = f"{sweep['scan_evalsha_usec_ours'] / 1000:,.1f}"
    if sweep["clean"]:
        return ours
    everyone = sweep["scan_evalsha_usec"] / 1000
    return f"{ours} (other clients' calls taken out; {everyone:,.1f} with them)"


def _scale_jwt(near: dict[str, Any]) -> list[str]:
    rows = [
        [what, *_figures(near[key])]
        for what, key in (("near cache hit", "near_cache_hit"), ("jwt.decode", "jwt_decode"))
    ]
    title = (
        f"scale: a near-cache hit and PyJWT {near['pyjwt']} `jwt.decode` of an HS256 token "
        f"({near['jwt_bytes']} bytes: {', '.join(near['claims'])}): "
        f"{near['ratio']:.2f}x the ops/s, {near['p50_ratio']:.2f}x by p50 (hits: "
        f"{near['hit_share']:.1%})"
    )
    return _table(title, ["measure", "ops/s", "p50 ms", "p99 ms"], rows)


def _near_cache(near: dict[str, Any]) -> list[str]:
    hits, seen, mixed = near["hits"], near["visibility"], near["mixed"]
    lines = _table(
        "near cache: a hot session validated from memory, and Flask-Session's load by id",
        ["measure", "ops/s"],
        [[name, f"{value:,.0f}"] for name, value in hits.items() if name != "hit share"],
    )
    lines += _table(
        f"near cache: revocation visible in another process ({seen['seen']} of "
        f"{seen['trials']} sessions; it validated {seen['B validations/s']:,.0f} times a second)",
        ["p50 ms", "p99 ms", "max ms"],
        [[f"{seen['p50 ms']:.2f}", f"{seen['p99 ms']:.2f}", f"{seen['max ms']:.2f}"]],
    )
    lines += _table(
        "near cache: mixed load (10,000 users, Zipf requests, 1% revocations)",
        ["near cache", "requests/s", "hit rate"],
        [
            [name, f"{row['requests/s']:,.0f}", f"{row['hit rate']:.1%}"]
            for name, row in mixed.items()
        ],
    )
    return lines


def _peers(peers: dict[str, Any]) -> list[str]:
    rows = [
        [name, peer["package"], mode, *_figures(peer["load_by_id"]), _cpu(peer["load_by_id"])]
        for mode in ("sync", THREADED, "async")
        for name, peer in peers.get(mode, {}).items()
    ]
    header = ["store", "package", "mode", "ops/s", "p50 ms", "p99 ms", "CPU µs/call"]
    lines = _table("load by id: sessionstore and peers", header, rows)
    notes = []
    for mode, path in peers.get("validate_script_path", {}).items():
        if path["script_calls"] is None:
            continue
        notes.append(
            f"{mode}: {path['script_calls']:,} of {path['validate_calls']:,} validations "
            f"({path['share']:.2%}) in {path['seconds']:.0f} s"
        )
    if notes:
        lines += [
            "Validations that took the script (the rest read two plain commands): EVALSHA "
            "calls in `INFO commandstats` during the measurement, less `sessionstore get`'s; "
            "every client's, so at most: " + "; ".join(notes) + ".",
            "",
        ]
    return lines


def _cpu(stats: dict[str, Any]) -> str:
    """The measuring process's CPU per call (blank where it is not measured: async tasks)."""
    cpu = stats.get("cpu_us")
    return "" if cpu is None else f"{cpu:.1f}"


def _redis_cpu(redis_cpu: dict[str, Any]) -> list[str]:
    rows = []
    for measure in redis_cpu["measures"].values():
        store, floor = measure["store"], measure["floor"]
        evalsha = store["usec_per_call"].get("evalsha")
        script = "" if evalsha is None else f"{evalsha:.2f} ({measure['script']})"
        windows = min(store["clean_windows"], floor["clean_windows"])
        rows.append(
            [
                store["label"],
                _per_op(store["sends_per_op"]),
                f"{store['usec_per_op']:.2f}",
                floor["label"],
                f"{floor['usec_per_op']:.2f}",
                "" if measure["ratio"] is None else f"{measure['ratio']:.2f}x",
                script,
                _per_op(store["inside_per_op"]),
                f"{windows} of {store['windows']}",
            ]
        )
    header = [
        "operation",
        "sends per op",
        "µs per op",
        "floor",
        "floor µs per op",
        "ratio",
        "EVALSHA µs per call (script)",
        "commands inside, per op",
        "clean windows",
    ]
    title = (
        "Redis CPU per operation: usec of the commands it sends (`INFO commandstats` deltas), "
        f"{redis_cpu['windows']} windows of {redis_cpu['ops_per_window']:,} operations"
    )
    note = (
        "Commands a script runs are counted by Redis under their own names too; their time is "
        "in the EVALSHA's, so they are listed, not added. A window is clean when no other "
        "client sent the commands measured meanwhile; figures are the median clean window's."
    )
    return [*_table(title, header, rows)[:-1], "", note, ""]


def _per_op(calls: dict[str, float]) -> str:
    return ", ".join(
        f"{name.upper()} {per_op:.3g}" for name, per_op in calls.items() if per_op >= 0.005
    )


def _targets(targets: list[dict[str, Any]]) -> list[str]:
    met = sum(1 for target in targets if target["met"])
    rows = [
        [
            t["name"],
            t["measured"],
            t["floor"],
            "" if t["ratio"] is None else f"{t['ratio']:.2f}x",
            t["goal"],
            "yes" if t["met"] else "**no**",
        ]
        for t in targets
    ]
    title = f"targets: {met} of {len(targets)} met"
    return _table(title, ["target", "measured", "floor / budget", "ratio", "goal", "met"], rows)


def _validate(validate: dict[str, Any]) -> list[str]:
    rows = [
        [mode, what, *_figures(stats)]
        for mode, measures in validate.items()
        for what, stats in measures.items()
    ]
    return _table("validate (hot path)", ["mode", "measure", "ops/s", "p50 ms", "p99 ms"], rows)


def _scaling(scaling: list[dict[str, Any]]) -> list[str]:
    totals = [f"{point['total_sessions']:,}" for point in scaling]
    header = ["measure (p50 / p99 ms)", *(f"store @ {t}" for t in totals)]
    header += [f"naive SCAN @ {t}" for t in totals]
    rows = []
    for section, label in (
        ("list_user_sessions", "list_user_sessions, {} per user"),
        ("admin", "admin list {}"),
        ("revoke_all", "revoke_all, {} per user"),
    ):
        for probe in scaling[0][section]:
            cells = [point[section][probe] for point in scaling]
            rows.append(
                [
                    label.format(probe.replace("_", " ")),
                    *(_latency(cell["store"]) for cell in cells),
                    *(_latency(cell["naive_scan"]) for cell in cells),
                ]
            )
    keys = ["keys in the database", *(f"{p['keys_in_database']:,}" for p in scaling)]
    rows.append(keys + [""] * len(scaling))
    return _table("listing and revoking as the data grows", header, rows)


def _memory(memory: dict[str, Any]) -> list[str]:
    mix = memory["mix"]
    idle = memory["with_idle_timeout"]
    rows = [
        ["store: session hash + every index (u, t, i, x) + layout", _bytes(memory, "store")],
        [f"store with {memory['idle_timeout']}", _bytes(idle, "store")],
        ["plain msgpack blob, no index", _bytes(memory, "blob")],
        ["(blob payload alone)", f"{memory['blob_payload_bytes']:,.0f}"],
        ["(MEMORY USAGE of the blob keys)", f"{memory['blob_memory_usage_per_session']:,.0f}"],
    ]
    for label, measured in (("store", memory), (memory["idle_timeout"], idle)):
        encodings = measured["encodings"]
        for kind, usage in measured["memory_usage_per_session"].items():
            detail = f", {encodings[kind]}" if kind in encodings else ""
            rows.append(
                [
                    f"(MEMORY USAGE, {label}: {kind}, {usage['keys']:,} keys{detail})",
                    f"{usage['bytes_per_session']:,.1f}",
                ]
            )
        rows.append(
            [
                f"(MEMORY USAGE, {label}: every key)",
                f"{measured['memory_usage_total_per_session']:,.0f}",
            ]
        )
    title = (
        f"memory: used_memory delta over {memory['sessions']:,} sessions of "
        f"{mix['users']:,} users ({mix['ip_addresses']:,} IP addresses, "
        f"{mix['shared_ip_share']:.0%} from {mix['shared_ips']} shared ones, "
        f"{mix['user_agent_bytes']}-byte user agents)"
    )
    config = memory.get("redis_config")
    lines = _table(title, ["layout", "bytes per session"], rows)
    if config:
        lines += [f"Redis settings: {_pairs(config)}.", ""]
    remembered = memory.get("process_bytes_per_remembered_session")
    if remembered is not None:
        lines += [
            "In the process: a store keeps the fixed parts of each session it validated (at most "
            f"{FIXED_PARTS:,}): {remembered:,.0f} B per session (tracemalloc, a new store "
            f"validating {REMEMBERED:,} sessions of the mix twice).",
            "",
        ]
    return lines


def _adversarial(adversarial: dict[str, Any]) -> list[str]:
    rows = [
        [
            state.replace("_", " "),
            f"{measured['total_count']:,}",
            _latency(measured["page"]),
            f"{measured['ratio_to_clean']:.2f}x",
            str(measured["round_trips"]),
            str(measured["calls"]),
            f"{measured['sessions_fetched']:,}",
        ]
        for state, measured in adversarial["states"].items()
    ]
    title = (
        f"admin first page (limit {adversarial['limit']}) after one user's "
        f"{adversarial['logins']:,} logins (cap {adversarial['cap']}), "
        f"{adversarial['background_sessions']:,} background sessions per tenant"
    )
    header = ["tenant", "live sessions", "p50 / p99 ms", "p50 vs clean", "round trips", "calls"]
    header.append("sessions fetched")
    return _table(title, header, rows)


def _bytes(measured: dict[str, Any], kind: str) -> str:
    return f"{measured[f'{kind}_bytes_per_session']:,.0f}"


def _device(device: dict[str, Any]) -> list[str]:
    rows = [
        [what, f"{stats['p50_ms'] * 1000:,.2f}", f"{stats['p99_ms'] * 1000:,.2f}"]
        for what, stats in device.items()
    ]
    return _table("device parse", ["measure", "p50 µs per agent", "p99 µs"], rows)


def _figures(stats: dict[str, Any]) -> list[str]:
    return [f"{stats['ops_per_s']:,.0f}", f"{stats['p50_ms']:.3f}", f"{stats['p99_ms']:.3f}"]


def _latency(stats: dict[str, Any]) -> str:
    return f"{_ms(stats['p50_ms'])} / {_ms(stats['p99_ms'])}"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _pairs(settings: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value}" for name, value in sorted(settings.items()))


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        f"### {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
