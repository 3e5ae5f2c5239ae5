"""A PNG of one target's Pareto front over the predicted accuracy/cost of every network (for reports;
``blocknas.orchestrator.plots.figures`` draws the interactive ones)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_front(
    path: Path,
    target: str,
    metric: str,
    front: list[tuple[float, float]],
    cloud: tuple[list[float], list[float]] | None = None,
    *,
    unit: str | None = None,
    budget: float | None = None,
    verified: list[tuple[float, float]] = (),
    outside: list[bool] | None = None,
    quality: str = "accuracy (%)",
) -> Path:
    """``front``: (cost, predicted accuracy) sorted by cost; ``cloud``: every network's (costs, accuracies);
    ``verified``: (cost, measured accuracy) of verified networks; ``outside[k]``: point k is an extrapolation."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    if cloud is not None:
        ax.scatter(cloud[0], cloud[1], s=8, color="0.75", label="all networks (predicted)", zorder=1)
    costs, accs = zip(*front, strict=True) if front else ((), ())
    ax.step(costs, accs, where="post", color="tab:blue", alpha=0.5, zorder=2)
    marks = outside or [False] * len(front)
    inside = [(c, a) for (c, a), o in zip(front, marks, strict=True) if not o]
    beyond = [(c, a) for (c, a), o in zip(front, marks, strict=True) if o]
    if inside:
        ax.scatter(
            *zip(*inside, strict=True),
            s=28,
            color="tab:blue",
            zorder=3,
            label=f"Pareto front, predicted ({len(front)} points)",
        )
    if beyond:
        ax.scatter(
            *zip(*beyond, strict=True),
            s=28,
            facecolors="none",
            edgecolors="tab:orange",
            zorder=3,
            label="predicted outside the measured range",
        )
    if verified:
        ax.scatter(
            *zip(*verified, strict=True), s=40, marker="D", color="tab:green", zorder=4, label="verified (measured)"
        )
    if budget is not None:
        ax.axvline(budget, color="tab:red", linestyle="--", label=f"budget {budget:g}")
    ax.set_xlabel(f"{target}: {metric} ({unit or metric})")
    ax.set_ylabel(quality)
    ax.set_title(f"Pareto front: predicted {quality.split(' (')[0].split(',')[0]} vs. {target}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
