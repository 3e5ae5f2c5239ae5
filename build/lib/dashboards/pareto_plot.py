"""A PNG of one target's Pareto front over the predicted accuracy/cost of every network."""

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
) -> Path:
    """``front``: (cost, predicted accuracy) sorted by cost; ``cloud``: every network's (costs, accuracies)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    if cloud is not None:
        ax.scatter(cloud[0], cloud[1], s=8, color="0.75", label="all networks (predicted)", zorder=1)
    costs, accs = zip(*front, strict=True) if front else ((), ())
    ax.step(costs, accs, where="post", color="tab:blue", alpha=0.5, zorder=2)
    ax.scatter(costs, accs, s=28, color="tab:blue", label=f"Pareto front ({len(front)} points)", zorder=3)
    ax.set_xlabel(f"{target} ({metric})")
    ax.set_ylabel("predicted accuracy (%)")
    ax.set_title(f"Pareto front: predicted accuracy vs. {target}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
