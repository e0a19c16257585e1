"""Benchmark results as a markdown table, a JSON file and PNG plots, all from the same rows."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.speed.contenders import BATCHED, LIBRARIES, OURS, THEIRS, THREADED  # noqa: E402
from benchmarks.speed.workload import Workload  # noqa: E402


@dataclass
class Row:
    """One library on one workload; ``tasks_per_s`` is None where the library could not run."""

    workload: Workload
    library: str
    status: str  # the library's version, or why it did not run
    tasks_per_s: float | None = None
    repeat_tasks_per_s: list[float] = field(default_factory=list)
    peak_mb: float | None = None
    flops_per_task: int | None = None


@dataclass
class Floor:
    """Ideal tasks/s: FLOPs of one task at the measured large-matmul rate."""

    flops_per_task: int
    matmul_flops_per_s: float

    @property
    def tasks_per_s(self) -> float:
        return self.matmul_flops_per_s / self.flops_per_task


def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _rate(row: Row | None) -> str:
    if row is None:
        return "—"
    if row.tasks_per_s is None:
        return row.status
    spread = f" ({min(row.repeat_tasks_per_s):.1f}–{max(row.repeat_tasks_per_s):.1f})" if row.repeat_tasks_per_s else ""
    return f"{row.tasks_per_s:,.1f}{spread}"


def _pairs(rows: list[Row]) -> dict[Workload, dict[str, Row]]:
    table: dict[Workload, dict[str, Row]] = defaultdict(dict)
    for row in rows:
        table[row.workload][row.library] = row
    return table


def _ratio(a: Row | None, b: Row | None) -> str:
    return f"{a.tasks_per_s / b.tasks_per_s:.2f}x" if a and b and a.tasks_per_s and b.tasks_per_s else "—"


def markdown(rows: list[Row], floors: dict[Workload, Floor], machine: dict[str, str], title: str, notes: list[str]) -> str:
    lines = [f"# {title}", "", "| machine | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in machine.items()]
    lines += ["", *notes, ""]
    lines += [
        "| algorithm | images | task | meta-batch | ours tasks/s (round min–max) | ours task threads tasks/s"
        " | ours batched tasks/s | learn2learn tasks/s | ours / l2l | threads / l2l | batched / l2l"
        " | peak MB ours / threads / batched / l2l | GFLOP / task | floor tasks/s | fastest ours % of floor |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w, pair in _pairs(rows).items():
        ours, threaded, batched, theirs = (pair.get(lib) for lib in (OURS, THREADED, BATCHED, THEIRS))
        floor = floors.get(w)
        fastest = max((r.tasks_per_s for r in (ours, threaded, batched) if r and r.tasks_per_s), default=None)
        share = f"{100 * fastest / floor.tasks_per_s:.1f}%" if floor and fastest else "—"
        peaks = " / ".join(_fmt(r.peak_mb if r else None) for r in (ours, threaded, batched, theirs))
        lines.append(
            f"| {w.algo} | {w.image} | {w.ways}-way {w.shots}-shot, {w.queries} queries | {w.meta_batch} | {_rate(ours)}"
            f" | {_rate(threaded)} | {_rate(batched)} | {_rate(theirs)} | {_ratio(ours, theirs)}"
            f" | {_ratio(threaded, theirs)} | {_ratio(batched, theirs)} | {peaks}"
            f" | {_fmt(floor.flops_per_task / 1e9 if floor else None, 3)} | {_fmt(floor.tasks_per_s if floor else None)}"
            f" | {share} |"
        )
    return "\n".join(lines) + "\n"


def to_json(rows: list[Row], floors: dict[Workload, Floor], machine: dict[str, str], settings: dict) -> str:
    return json.dumps(
        {
            "machine": machine,
            "settings": settings,
            "rows": [asdict(r) for r in rows],
            "floors": [
                {"workload": asdict(w), **asdict(f), "tasks_per_s": f.tasks_per_s} for w, f in floors.items()
            ],
        },
        indent=2,
    )


def _curves(rows: list[Row], value: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Panel title -> library -> [(meta-batch, value)], meta-batch ascending."""
    panels: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        y = getattr(row, value)
        if y is not None:
            w = row.workload
            panels[f"{w.algo}, {w.image} {w.ways}w{w.shots}s"][row.library].append((w.meta_batch, y))
    return {title: {lib: sorted(points) for lib, points in libs.items()} for title, libs in panels.items()}


def plot(rows: list[Row], value: str, ylabel: str, path: Path) -> bool:
    """One panel per workload family, one line per library; False when there is nothing to draw."""
    panels = _curves(rows, value)
    if not panels:
        return False
    cols = min(4, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), squeeze=False)
    for ax, (title, libs) in zip(axes.flat, panels.items()):
        for lib, points in libs.items():
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=lib)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("meta-batch (tasks)")
        ax.set_ylabel(ylabel)
        ax.set_xscale("log", base=2)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_bars(rows: list[Row], path: Path) -> bool:
    """Tasks/s of every library, grouped by workload (one bar per library); False when nothing ran."""
    table = {w: pair for w, pair in _pairs(rows).items() if any(r.tasks_per_s for r in pair.values())}
    if not table:
        return False
    libraries = [lib for lib in LIBRARIES if any(lib in pair for pair in table.values())]
    width = 0.8 / len(libraries)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(table)), 4.0))
    for k, lib in enumerate(libraries):
        xs = [i + (k - (len(libraries) - 1) / 2) * width for i in range(len(table))]
        ys = [pair[lib].tasks_per_s or 0.0 if lib in pair else 0.0 for pair in table.values()]
        ax.bar(xs, ys, width, label=lib)
    ax.set_xticks(range(len(table)))
    ax.set_xticklabels([f"{w.algo}\n{w.image}\n{w.ways}w{w.shots}s mb{w.meta_batch}" for w in table], fontsize=7)
    ax.set_ylabel("tasks / s (higher is better)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
