"""The PNG: p50 latency against the number of sessions in Redis, store beside its SCAN floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

PANELS = (
    ("list_user_sessions", "list_user_sessions (sessions per user)"),
    ("admin", "admin list (page)"),
    ("revoke_all", "revoke_all (sessions per user)"),
)


def draw(scaling: list[dict[str, Any]], title: str, path: Path) -> None:
    totals = [point["total_sessions"] for point in scaling]
    figure, axes = plt.subplots(1, len(PANELS), figsize=(16, 5.2), constrained_layout=True)
    for axis, (section, title_of_panel) in zip(axes, PANELS, strict=True):
        colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        for probe in scaling[0][section]:
            color = next(colors)
            for kind, style, suffix in (("store", "-o", ""), ("naive_scan", ":x", " naive SCAN")):
                p50 = [point[section][probe][kind]["p50_ms"] for point in scaling]
                label = f"{probe.replace('_', ' ')}{suffix}"
                axis.plot(totals, p50, style, color=color, label=label)
        axis.set(xscale="log", yscale="log", title=title_of_panel, xlabel="sessions in Redis")
        axis.set_ylabel("p50 latency (ms)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
