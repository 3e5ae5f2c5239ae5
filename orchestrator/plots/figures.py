"""Interactive Plotly figures of a search: each target's front, the fronts of every target side by side, and
the block heatmap. Pure: plain dicts and arrays in, ``plotly.graph_objects.Figure`` (or one self-contained
HTML page) out. The run writes them to ``figures.html``; the dashboard draws the same figures.

A front point is a dict as ``summary.json`` holds it: ``blocks`` (``slot:choice`` per slot),
``predicted_accuracy``, ``cost``, ``costs`` (every target) and, where the prediction lies outside what was
measured, ``outside_measured``. A verified network: ``blocks``, ``accuracy`` (measured),
``predicted_accuracy``, ``costs`` (measured or exact).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from blocknas.orchestrator.plots.units import unit_of

PREDICTED, EXTRAPOLATED, VERIFIED, CLOUD = "#1f77b4", "#ff7f0e", "#2ca02c", "#c7c7c7"
CLOUD_POINTS = 5000  # at most this many background networks per figure (a sample, evenly spaced)


def axis_title(target: str, metric: str) -> str:
    return f"{metric} ({unit_of(metric)})" if target == metric else f"{target}: {metric} ({unit_of(metric)})"


def architecture(blocks: Sequence[str]) -> str:
    return " ".join(blocks)


def _hover(point: Mapping, accuracy_label: str) -> str:
    lines = [
        f"<b>{html.escape(architecture(point['blocks']))}</b>",
        f"{accuracy_label}: {point['accuracy'] if 'accuracy' in point else point['predicted_accuracy']:.4g} %",
    ]
    if "accuracy" in point and point.get("predicted_accuracy") is not None:
        lines.append(f"predicted: {point['predicted_accuracy']:.4g} %")
    lines += [f"{name}: {value:.6g}" for name, value in point.get("costs", {}).items()]
    if point.get("outside_measured"):
        lines.append("outside the measured range: " + ", ".join(point["outside_measured"]))
    return "<br>".join(lines)


def front_traces(
    target: str,
    points: Sequence[Mapping],
    verified: Sequence[Mapping] = (),
    cloud: tuple[Sequence[float], Sequence[float]] | None = None,
) -> list[go.Scatter]:
    """Background networks, the front (predicted; extrapolations apart), verified networks (measured)."""
    traces = []
    if cloud is not None and len(cloud[0]):
        step = max(1, len(cloud[0]) // CLOUD_POINTS)
        traces.append(
            go.Scattergl(
                x=list(cloud[0][::step]),
                y=list(cloud[1][::step]),
                mode="markers",
                name="networks (predicted)" + (" (a sample)" if step > 1 else ""),
                marker={"size": 4, "color": CLOUD},
                hoverinfo="skip",
            )
        )
    inside = [p for p in points if not p.get("outside_measured")]
    outside = [p for p in points if p.get("outside_measured")]
    traces.append(
        go.Scatter(
            x=[p["cost"] for p in points],
            y=[p["predicted_accuracy"] for p in points],
            mode="lines",
            line={"shape": "hv", "color": PREDICTED, "width": 1},
            name="front",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    for group, name, color in (
        (inside, "front (predicted)", PREDICTED),
        (outside, "front, outside the measured range", EXTRAPOLATED),
    ):
        if group:
            traces.append(
                go.Scatter(
                    x=[p["cost"] for p in group],
                    y=[p["predicted_accuracy"] for p in group],
                    mode="markers",
                    name=name,
                    marker={"size": 8, "color": color, "symbol": "circle" if group is inside else "circle-open"},
                    customdata=[architecture(p["blocks"]) for p in group],
                    hovertext=[_hover(p, "predicted") for p in group],
                    hoverinfo="text",
                )
            )
    shown = [v for v in verified if target in v.get("costs", {})]
    if shown:
        traces.append(
            go.Scatter(
                x=[v["costs"][target] for v in shown],
                y=[v["accuracy"] for v in shown],
                mode="markers",
                name="verified (measured)",
                marker={"size": 10, "color": VERIFIED, "symbol": "diamond"},
                customdata=[architecture(v["blocks"]) for v in shown],
                hovertext=[_hover(v, "measured") for v in shown],
                hoverinfo="text",
            )
        )
    return traces


def front_figure(
    target: str,
    metric: str,
    points: Sequence[Mapping],
    *,
    budget: float | None = None,
    verified: Sequence[Mapping] = (),
    cloud=None,
    title: str | None = None,
    quality: str = "accuracy (%)",
) -> go.Figure:
    figure = go.Figure(front_traces(target, points, verified, cloud))
    if budget is not None:
        figure.add_vline(
            x=budget,
            line={"dash": "dash", "color": "#d62728"},
            annotation_text=f"budget {budget:g} {unit_of(metric)}",
            annotation_position="top left",
        )
    figure.update_layout(
        title=title or f"{target}: predicted {quality.split(' (')[0].split(',')[0]} vs. {metric}",
        xaxis_title=axis_title(target, metric),
        yaxis_title=quality,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        height=480,
    )
    return figure


def fronts_figure(
    targets: Mapping[str, Mapping],
    budgets: Mapping[str, float] | None = None,
    verified: Sequence[Mapping] = (),
    quality: str = "accuracy (%)",
) -> go.Figure:
    """Every target's front side by side, accuracy shared: ``targets[name]`` has ``metric`` and ``pareto``."""
    names = list(targets)
    figure = make_subplots(rows=1, cols=max(1, len(names)), shared_yaxes=True, subplot_titles=names)
    for col, name in enumerate(names, start=1):
        for trace in front_traces(name, targets[name]["pareto"], verified):
            trace.showlegend = col == 1 and trace.showlegend is not False
            trace.legendgroup = trace.name
            figure.add_trace(trace, row=1, col=col)
        figure.update_xaxes(
            title_text=f"{targets[name]['metric']} ({unit_of(targets[name]['metric'])})", row=1, col=col
        )
        if budgets and name in budgets:
            figure.add_vline(x=budgets[name], line={"dash": "dash", "color": "#d62728"}, row=1, col=col)
    figure.update_yaxes(title_text=quality, row=1, col=1)
    figure.update_layout(
        title="Pareto fronts of every target",
        template="plotly_white",
        height=460,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def heatmap_figure(
    slots: Sequence[str],
    choices: Sequence[Sequence[str]],
    values: Sequence[Sequence[float]],
    costs: Mapping[str, tuple[str, Sequence[Sequence[float]]]],
) -> go.Figure:
    """Slot x candidate: the block's value (accuracy change it brings), then its cost on every target
    (``costs[target] = (metric, per-slot values)``). Candidates absent from a slot stay blank."""
    candidates = list(dict.fromkeys(c for names in choices for c in names))
    panels = [("block value (accuracy change, points)", values)] + [
        (f"{name}: {metric} ({unit_of(metric)})", per_slot) for name, (metric, per_slot) in costs.items()
    ]
    figure = make_subplots(
        rows=len(panels), cols=1, subplot_titles=[p[0] for p in panels], vertical_spacing=min(0.08, 0.5 / len(panels))
    )
    for row, (title, per_slot) in enumerate(panels, start=1):
        grid = [[None] * len(slots) for _ in candidates]
        for i, names in enumerate(choices):
            for j, name in enumerate(names):
                grid[candidates.index(name)][i] = float(per_slot[i][j])
        figure.add_trace(
            go.Heatmap(
                z=grid,
                x=list(slots),
                y=candidates,
                colorscale="RdBu" if row == 1 else "Viridis",
                zmid=0 if row == 1 else None,
                colorbar={"len": 1 / len(panels), "y": 1 - (row - 0.5) / len(panels)},
                hovertemplate="slot %{x}<br>block %{y}<br>" + title + ": %{z:.6g}<extra></extra>",
            ),
            row=row,
            col=1,
        )
    figure.update_layout(
        title="Blocks: value and cost per slot", template="plotly_white", height=max(360, 260 * len(panels))
    )
    return figure


def write_html(path: Path, title: str, figures: Sequence[go.Figure], intro: str = "") -> Path:
    """One self-contained page (plotly.js inlined once): opens offline, in a browser or the MLflow UI."""
    parts = [
        figure.to_html(full_html=False, include_plotlyjs=index == 0, default_width="100%")
        for index, figure in enumerate(figures)
    ]
    path.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family: sans-serif; margin: 1em 2em'><h1>{html.escape(title)}</h1>"
        f"<p>{intro}</p>{''.join(parts)}</body></html>",
        encoding="utf-8",
    )
    return path
