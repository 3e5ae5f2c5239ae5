"""``blocknas dashboard``: a read-only web app over the performance table (Dash, on Flask).

Pages: experiments and their block tables; hardware targets and every stored version; each registered
target's front with a budget control that answers through ``orchestrator.targets.switching.switch``, the
very function behind ``blocknas switch``; verified networks, predicted against measured; the history of
stored fronts (every run, solve, ``fronts show`` and scheduler re-search). Nothing here writes to the store:
a front not stored yet is solved in memory, a measured target never timed is refused (run first).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from urllib.parse import quote, unquote

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import figures
from orchestrator.pipeline.block_views import block_rows
from orchestrator.pipeline.front_service import point_json, table_hash_of
from orchestrator.storage import PerformanceStore, public_url
from orchestrator.targets import switching
from orchestrator.targets.fronts import front_points, prepare, target_budgets, target_key, with_target
from orchestrator.targets.registry import find

PAGES = [("/", "Experiments"), ("/targets", "Targets"), ("/fronts", "Fronts"), ("/verified", "Verified"),
         ("/history", "History")]


def _table(rows: list[dict], columns: list[str], table_id: str, links: dict[str, Callable] | None = None):
    def cell(row, column):
        value = row.get(column)
        if links and column in links and value is not None:
            return html.Td(dcc.Link(str(value), href=links[column](row)))
        if isinstance(value, float):
            return html.Td(f"{value:.6g}")
        return html.Td("" if value is None else str(value))

    return html.Table([html.Thead(html.Tr([html.Th(c) for c in columns])),
                       html.Tbody([html.Tr([cell(r, c) for c in columns]) for r in rows])],
                      id=table_id, className="grid")


class Views:
    """What the pages show, read from one store; ``settings`` names the experiment targets are solved on."""

    def __init__(self, settings, full_settings: Callable):
        self.settings, self._full, self._full_settings = settings, full_settings, None
        self.store = PerformanceStore(settings.storage_url)
        self._fronts: dict[tuple[str, str, str], tuple] = {}

    def full(self):
        """The settings with the search space built (once: it imports torch and builds the space)."""
        if self._full_settings is None:
            self._full_settings = self._full()
        return self._full_settings

    def prepared(self, name: str):
        """(base, entry, table, table hash) of a registered target, read now: a re-run or a new version shows
        at the next request (tens of milliseconds; the front itself is cached by the table's content)."""
        entry = find(self.store, name)
        settings = self.settings if entry.definition.get("scores") else self.full()
        base, entry = prepare(self.store, entry, settings, measure=False)
        table = with_target(base, entry)
        return base, entry, table, table_hash_of(table)

    def front(self, name: str) -> tuple[list[dict], str, str, str]:
        """(points, metric, version, quality): the stored front ``fronts show`` prints, or solved now, in
        memory; ``quality`` names the y-axis (a library's own scores are losses, summed and negated)."""
        base, entry, table, digest = self.prepared(name)
        key = name, entry.version, digest
        if key not in self._fronts:
            metric, budgets = target_budgets(entry)
            max_points = self.settings.solver.max_points
            stored = target_key(base, entry, digest, max_points).stored(self.store)
            points = stored.points if stored is not None else [
                point_json(table.slots, p) for p in front_points(table, metric, budgets, max_points)]
            quality = ("quality (minus the summed block loss)" if entry.definition.get("scores")
                       else "predicted accuracy (%)")
            self._fronts[key] = (points, metric, entry.version, quality)
        return self._fronts[key]

    def switch(self, name: str, budget: float) -> switching.Switch:
        base, entry, _, _ = self.prepared(name)
        return switching.switch(self.store, base, name, budget, self.settings.solver.max_points, entry)


def _experiments(views: Views, name: str | None):
    experiments = views.store.experiments()
    latest = list({e["name"]: e for e in reversed(experiments)}.values())[::-1]
    if name is None:
        rows = [{"experiment": e["name"], "config": e["config_hash"][:12], "recorded": e["created_at"],
                 "blocks done": sum(s.status == "done" for s in views.store.block_scores(experiment=e["name"]))}
                for e in latest]
        link = {"experiment": lambda r: f"/?e={quote(r['experiment'])}"}
        return [html.H2("Experiments"),
                _table(rows, ["experiment", "config", "recorded", "blocks done"], "experiments", link)]
    rows = block_rows(views.store.block_scores(experiment=name))
    return [html.H2(f"Experiment {name}: block table"),
            html.P("accuracy: the block's network, held out; delta vs base: against the slot's first choice in "
                   "the same context; delta vs context: against the context network (the block's swap-in value)."),
            _table(rows, ["slot", "block", "context", "status", "accuracy", "delta_vs_base", "delta_vs_context",
                          "train_seconds", "mlflow_run_id"], "blocks")]


def _targets(views: Views):
    current = views.store.registered_targets()
    rows = [{"target": t.name, "kind": t.kind, "version": t.version[:12], "metric": t.definition["metrics"][0],
             "budgets": t.definition.get("budgets") or "", "updated": t.updated_at} for t in current]
    versions = [v | {"version": v["version"][:12]} for v in views.store.target_versions()]
    return [html.H2("Hardware targets"),
            _table(rows, ["target", "kind", "version", "metric", "budgets", "updated"], "targets",
                   {"target": lambda r: f"/fronts?t={quote(r['target'])}"}),
            html.H3("Every stored version"),
            _table(versions, ["name", "version", "kind", "created_at", "source"], "versions")]


def _fronts(views: Views, name: str | None):
    names = [t.name for t in views.store.registered_targets()]
    links = html.P(["Targets: "] + [dcc.Link(n, href=f"/fronts?t={quote(n)}", style={"marginRight": "1em"})
                                   for n in names])
    if name is None:
        return [html.H2("Fronts"), links,
                html.P("Pick a registered target (`blocknas targets add`); the experiment's own targets are in "
                       "the run's figures.html.")]
    try:
        points, metric, version, quality = views.front(name)
    except Exception as exc:  # noqa: BLE001 - shown on the page: the reason, as the CLI says it
        return [html.H2(f"Front of {name}"), links, html.P(str(exc), id="front-error")]
    costs = [p["cost"] for p in points] or [0.0]
    low, high = min(costs), max(costs)
    step = (high - low) / 1000 or 1.0
    return [
        html.H2(f"Front of {name} (version {version[:12]}) on {views.settings.name}: {len(points)} points"),
        links, dcc.Store(id="front-target", data=name),
        html.Div([html.Label(f"budget, {metric} ({figures.unit_of(metric)}): "),
                  dcc.Input(id="budget-input", type="number", value=high, debounce=True, step="any",
                            style={"width": "12em"})]),
        dcc.Slider(id="budget-slider", min=low, max=high, value=high, step=step, marks=None,
                   tooltip={"placement": "bottom"}),
        html.Div(id="answer", style={"margin": "1em 0", "fontSize": "1.1em"}),
        dcc.Graph(id="front-graph", figure=figures.front_figure(name, metric, points, budget=high,
                                                                quality=quality)),
    ]


def _verified(views: Views):
    results = views.store.all_network_results()
    rows = [{"experiment": r.experiment, "network": r.network_key, "measured": r.accuracy,
             "predicted": r.predicted_accuracy, "error": (r.accuracy - r.predicted_accuracy)
             if r.predicted_accuracy is not None else None, "round": r.refine_round, "source": r.source}
            for r in results]
    figure = go.Figure()
    paired = [r for r in rows if r["predicted"] is not None]
    if paired:
        lo = min(min(r["measured"], r["predicted"]) for r in paired)
        hi = max(max(r["measured"], r["predicted"]) for r in paired)
        figure.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured",
                                    line={"dash": "dot", "color": "#888"}))
        figure.add_trace(go.Scatter(x=[r["predicted"] for r in paired], y=[r["measured"] for r in paired],
                                    mode="markers", name="verified networks", text=[r["network"] for r in paired],
                                    hovertemplate="%{text}<br>predicted %{x:.4g}<br>measured %{y:.4g}<extra></extra>"))
    figure.update_layout(title="Verified networks: measured vs. predicted accuracy", template="plotly_white",
                         xaxis_title="predicted accuracy (%)", yaxis_title="measured accuracy (%)")
    return [html.H2(f"Verified networks ({len(rows)})"),
            dcc.Graph(id="verified-graph", figure=figure) if paired else html.P(
                "No network verified yet: `blocknas run refine.rounds=N` verifies the solver's picks whole."),
            _table(rows, ["experiment", "network", "measured", "predicted", "error", "round", "source"], "verified")]


def _history(views: Views):
    fronts = views.store.front_history()
    rows = [{"computed": f.computed_at, "experiment": f.experiment, "target": f.target,
             "version": f.target_version[:12], "points": len(f.points),
             "cheapest": f.points[0]["cost"] if f.points else None} for f in fronts]
    return [html.H2("Re-search history"),
            html.P("Every front stored, newest first: by `blocknas run` / `solve`, by `fronts show`, and by "
                   "`blocknas scheduler` when a target's version changed."),
            _table(rows, ["computed", "experiment", "target", "version", "points", "cheapest"], "history")]


def create_app(settings, full_settings: Callable) -> Dash:
    views = Views(settings, full_settings)
    app = Dash(__name__, title="blocknas", suppress_callback_exceptions=True, update_title=None)
    app.layout = html.Div([
        dcc.Location(id="url"),
        html.Div([html.B("blocknas"), html.Span(f"  {public_url(settings.storage_url)}, experiment {settings.name}",
                                               style={"color": "#666"})]
                 + [dcc.Link(label, href=path, style={"marginLeft": "1.5em"}) for path, label in PAGES],
                 style={"borderBottom": "1px solid #ddd", "padding": "0.5em 0"}),
        html.Div(id="page"),
    ], style={"fontFamily": "sans-serif", "margin": "0 2em"})

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def render(path, search):
        query = dict(part.split("=", 1) for part in (search or "").lstrip("?").split("&") if "=" in part)
        chosen = unquote(query["t"]) if "t" in query else None
        if path == "/targets":
            return _targets(views)
        if path == "/fronts":
            return _fronts(views, chosen)
        if path == "/verified":
            return _verified(views)
        if path == "/history":
            return _history(views)
        return _experiments(views, unquote(query["e"]) if "e" in query else None)

    @app.callback(Output("answer", "children"), Output("front-graph", "figure"), Output("budget-input", "value"),
                  Output("budget-slider", "value"), Input("budget-input", "value"), Input("budget-slider", "value"),
                  State("front-target", "data"))
    def answer(typed, slid, name):
        budget = slid if ctx.triggered_id == "budget-slider" else typed
        if budget is None or not math.isfinite(float(budget)):
            return "Give a budget.", no_update, no_update, no_update
        budget = float(budget)
        points, metric, _, quality = views.front(name)
        try:
            result = views.switch(name, budget)
        except Exception as exc:  # noqa: BLE001 - an invalid budget: said as the CLI says it
            return html.Span(str(exc), id="answer-error"), no_update, no_update, no_update
        figure = figures.front_figure(name, metric, points, budget=budget, quality=quality)
        if result.point is None:
            text = html.Span(result.infeasible, id="answer-error")
        else:
            point = result.point
            figure.add_trace(go.Scatter(x=[point["cost"]], y=[point["predicted_accuracy"]], mode="markers",
                                        name="switch answer", marker={"size": 16, "symbol": "star",
                                                                      "color": "#d62728"}))
            text = html.Div([html.Div(["best within ", html.B(f"{metric} <= {budget:g}"), ": ",
                                       html.Code(" ".join(point["blocks"]), id="answer-blocks")]),
                             html.Div(f"predicted {point['predicted_accuracy']:.4f}, {metric} {point['cost']:.6g}"
                                      + (" (solved now)" if result.solved else " (from the stored front)"),
                                      id="answer-detail")])
        return (text, figure, no_update if ctx.triggered_id == "budget-input" else budget,
                no_update if ctx.triggered_id == "budget-slider" else budget)

    return app


def serve(settings, full_settings: Callable, host: str, port: int) -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    app = create_app(settings, full_settings)
    print(f"blocknas dashboard on http://{host}:{port}/ (read-only; Ctrl-C stops it)", flush=True)
    app.run(host=host, port=port, debug=False)
