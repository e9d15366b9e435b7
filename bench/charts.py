"""bench/charts: draw the recorded figures (bench/figures.json) as the PNG charts that
bench/README.md shows, so the pictures never drift from the numbers.

    .venv/bin/pip install -e '.[bench]'     # matplotlib, pinned in pyproject.toml
    .venv/bin/python bench/charts.py        # -> bench/charts/*.png

bench/consume.py (section "peers") and bench/scale.py ("scaling") write their sections
on full runs; "latency" comes from the latency bench of issue 19's goal 5. A missing
section skips its chart with a line saying so. Pure drawing: no devstack, no network.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib.axes import Axes
from matplotlib.figure import Figure

HERE = Path(__file__).resolve().parent
COLORS = {"sdstream": "#1f77b4", "vmagent": "#2ca02c", "promtool": "#d62728"}
Figures = dict[str, Any]


def color(name: str) -> str:
    return next((c for key, c in COLORS.items() if name.startswith(key)), "#7f7f7f")


def stamp(fig: Figure, section: Figures) -> None:
    """Say when and on what load the figures were measured, under the chart."""
    fig.text(0.01, 0.01, f"{section.get('when', '?')}: {section.get('machine', '')}",
             fontsize=6.5, color="#555555")  # fmt: skip


def bars(ax: Axes, names: Sequence[str], values: Sequence[float], *, fmt: str) -> None:
    drawn = ax.barh(list(names), list(values), color=[color(n) for n in names])
    ax.bar_label(drawn, labels=[fmt.format(v) for v in values], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.25)


def peers(section: Figures) -> Figure:
    """Memory per discovered target and time to serving: sdstream, vmagent, promtool."""
    rows = section["rows"]
    fig, (mem, wall) = plt.subplots(1, 2, figsize=(12, 3.8))
    names = [f"{r['name']} ({r['process']})" for r in rows]
    per_target = [r["rss_mb"] * 1024 / max(1, r["targets"]) for r in rows]
    bars(mem, names, per_target, fmt="{:.2f} KiB")
    mem.set_xlabel("peak RSS per discovered target (KiB)")
    mem.set_title(f"Memory, {section['api_pods']} pods + slices: {section['targets']:,} targets",
                  fontsize=10)  # fmt: skip
    timed = [r for r in rows if r.get("seconds") is not None]
    bars(wall, [r["name"] for r in timed], [r["seconds"] for r in timed], fmt="{:.1f} s")
    wall.set_xlabel("seconds from exec: all served, or all dropped")
    wall.set_title("Time to serving", fontsize=10)
    untimed = [f"{r['name']}: runs to its timeout ({r['timeout_s']:.0f} s)" for r in rows
               if r.get("seconds") is None]  # fmt: skip
    if untimed:
        wall.text(0.99, 0.02, "not timed: " + "; ".join(untimed), transform=wall.transAxes,
                  ha="right", fontsize=6.5, color="#555555")  # fmt: skip
    stamp(fig, section)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def latency(section: Figures) -> Figure:
    """Events appended to the object topics -> HTTP SD answer changed: the distribution."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    # every sample, or evenly spaced quantiles (0 %, 0.5 %, ... 100 %) of them: both a CDF
    samples = sorted(section.get("samples_ms") or section.get("quantiles_ms") or [])
    if samples:
        share = [100 * (i + 1) / len(samples) for i in range(len(samples))]
        ax.plot(samples, share, color=COLORS["sdstream"])
        ax.set_ylabel("changes seen within (%)")
    marks = section.get("percentiles_ms", {})
    for q in ("50", "99"):
        if q in marks:
            ax.axvline(marks[q], color="#999999", linewidth=0.8, linestyle=":")
    if "goal_p99_ms" in section:
        ax.axvline(section["goal_p99_ms"], color=COLORS["promtool"], linewidth=1,
                   label=f"goal: p99 <= {section['goal_p99_ms']} ms")  # fmt: skip
        ax.legend(fontsize=8, loc="center right")
    text = "\n".join(f"{q if q == 'max' else 'p' + q}: {ms:.0f} ms" for q, ms in marks.items())
    ax.text(0.98, 0.04, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "#cccccc"})  # fmt: skip
    ax.set_xlabel(section.get("what", "ms from event appended to HTTP SD answer changed"))
    ax.set_title(f"Latency at {section.get('rate_per_s', '?')} events/s "
                 f"({section.get('changes', '?')} changes, {section.get('lost', '?')} lost)",
                 fontsize=10)  # fmt: skip
    stamp(fig, section)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def scaling(section: Figures) -> Figure:
    """Fold members in one group: time to caught up, and each member's peak RSS."""
    runs = sorted(section["runs"], key=lambda r: r["members"])
    members = [r["members"] for r in runs]
    fig, (wall, mem) = plt.subplots(1, 2, figsize=(11, 3.6))
    wall.plot(members, [r["seconds"] for r in runs], marker="o", color=COLORS["sdstream"])
    for r in runs:
        wall.annotate(f"{r['seconds']:.1f} s", (r["members"], r["seconds"]), fontsize=8,
                      textcoords="offset points", xytext=(4, 4))  # fmt: skip
    wall.set_xlabel("members in the group")
    wall.set_ylabel("seconds: start to all caught up + published")
    wall.set_xticks(members)
    wall.set_ylim(bottom=0)
    for r in runs:
        mem.scatter([r["members"]] * len(r["rss_mb"]), r["rss_mb"], color=COLORS["sdstream"])
    mem.plot(members, [max(r["rss_mb"]) for r in runs], color=COLORS["sdstream"],
             linestyle="--", label="largest member")  # fmt: skip
    mem.set_xlabel("members in the group")
    mem.set_ylabel("peak RSS per member (MiB)")
    mem.set_xticks(members)
    mem.set_ylim(bottom=0)
    mem.legend(fontsize=8)
    fig.suptitle(f"Scaling: {section['clusters']} clusters x {section['pods_per_cluster']:,} "
                 f"pods = {section['events']:,} events, {section['partitions']} partitions "
                 f"per topic", fontsize=10)  # fmt: skip
    stamp(fig, section)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


CHARTS: dict[str, Callable[[Figures], Figure]] = {
    "peers": peers,
    "latency": latency,
    "scaling": scaling,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=Path, default=HERE / "figures.json")
    parser.add_argument("--out", type=Path, default=HERE / "charts")
    args = parser.parse_args()
    figures = json.loads(args.figures.read_text())
    args.out.mkdir(exist_ok=True)
    for name, draw in CHARTS.items():
        if name not in figures:
            print(f"charts: no {name!r} section in {args.figures}; skipped")
            continue
        fig = draw(figures[name])
        path = args.out / f"{name}.png"
        fig.savefig(path, dpi=110, metadata={"Software": None})
        plt.close(fig)
        print(f"charts: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
