"""PNG figures (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def histogram_png(values: Sequence[float], path: Path, title: str, xlabel: str, bins: int = 20) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    counts, _, _ = ax.hist(list(values), bins=bins, range=(0.0, 1.0), color="#4c72b0", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("tokens")
    if counts.sum() > 0:  # a log axis needs something to show (an empty histogram warns)
        ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def sweep_plot(runs: Sequence[Any], parameter: str, metrics: Sequence[str], path: Path) -> Path:
    """Each score (with its 95% interval) against one swept parameter; other parameters as separate lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    other = "smoothness" if parameter == "min_scale" else "min_scale"
    columns = min(len(metrics), 4)  # a grid, not one long row: a quality sweep has a dozen metrics
    rows = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.6 * rows), dpi=120, squeeze=False)
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics):
        groups: dict[float, list[Any]] = {}
        for run in runs:
            if metric in run.scores:
                groups.setdefault(getattr(run.setting, other), []).append(run)
        for value, group in sorted(groups.items()):
            group.sort(key=lambda r: getattr(r.setting, parameter))
            xs = [getattr(r.setting, parameter) for r in group]
            ys = [r.scores[metric] for r in group]
            low = [r.intervals[metric][0] for r in group]
            high = [r.intervals[metric][1] for r in group]
            ax.plot(xs, ys, marker="o", label=f"{other} {value:g}")
            ax.fill_between(xs, low, high, alpha=0.2)
        if parameter == "smoothness":
            ax.set_xscale("log")
        else:
            ax.invert_xaxis()  # from no smoothing (1.0) to the strongest, as the paper plots it
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(parameter)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
