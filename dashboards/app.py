"""``blocknas dashboard``: a read-only web app over the performance table (Dash, on Flask).

Pages: experiments and their block tables; hardware targets and every stored version; each registered
target's front with a budget control that answers through ``blocknas.orchestrator.deploy.switching.switch``, the
very function behind ``blocknas switch``; verified networks, predicted against measured; the history of
stored fronts (every run, solve, ``fronts show`` and scheduler re-search). Nothing here writes to the store:
a front not stored yet is solved in memory, a measured target never timed is refused (run first).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, ctx, dash_table, dcc, html, no_update
from dash.dash_table.Format import Format, Scheme, Trim

from blocknas.orchestrator.answers import registered_objective, run_objective, with_answers
from blocknas.orchestrator.deploy import switching
from blocknas.orchestrator.deploy.fronts import front_points, prepare, target_budgets, target_key, target_table
from blocknas.orchestrator.front_service import point_json
from blocknas.orchestrator.pipeline.block_views import block_rows
from blocknas.orchestrator.plots import figures
from blocknas.orchestrator.plots.units import unit_of
from blocknas.orchestrator.storage import PerformanceStore, public_url
from blocknas.orchestrator.targets.registry import find
from blocknas.solvers import InfeasibleBudgetError

if TYPE_CHECKING:
    from blocknas.orchestrator.experiments import StoredExperiment

REGISTERED, RUN = "t", "r"  # the query parameter naming a front's target: registered, or the run's own
PAGES = [
    ("/", "Experiments"),
    ("/targets", "Targets"),
    ("/fronts", "Fronts"),
    ("/verified", "Verified"),
    ("/history", "History"),
]


PAGE_ROWS = 100  # a table shows this many rows a page: thousands of blocks stay quick to draw
NUMBER = Format(precision=6, scheme=Scheme.decimal_or_exponent, trim=Trim.yes)  # 6 significant digits


def _table(rows: list[dict], columns: list[str], table_id: str, links: dict[str, Callable] | None = None):
    """A sortable, filterable, paged table (Dash's DataTable: it draws one page, whatever the rows); a
    column in ``links`` shows each value as a link to ``links[column](row)``."""
    links = links or {}

    def shown(row, column):
        value = row.get(column)
        if column in links and value is not None and (href := links[column](row)):
            return f"[{value}]({href})"
        return value if value is None or isinstance(value, int | float | str) else str(value)

    numeric = {c for c in columns if c not in links and any(isinstance(r.get(c), int | float) for r in rows)}
    spec = [
        {"name": c, "id": c, "presentation": "markdown"}
        if c in links
        else {"name": c, "id": c, "type": "numeric", "format": NUMBER}
        if c in numeric
        else {"name": c, "id": c}
        for c in columns
    ]
    return dash_table.DataTable(
        id=table_id,
        columns=spec,
        data=[{c: shown(r, c) for c in columns} for r in rows],
        page_size=PAGE_ROWS,
        page_action="native" if len(rows) > PAGE_ROWS else "none",
        sort_action="native",
        filter_action="native" if len(rows) > 10 else "none",
        markdown_options={"link_target": "_self"},
        style_table={"overflowX": "auto", "margin": "0.5em 0 1.5em"},
        style_cell={"fontFamily": "sans-serif", "padding": "3px 12px", "textAlign": "right"},
        style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"} for c in columns if c not in numeric],
        style_header={"fontWeight": "bold", "background": "#f6f6f6"},
        css=[{"selector": ".dash-cell p", "rule": "margin: 0"}],
    )  # a link cell is a paragraph: no extra height


@dataclass(frozen=True)
class ShownFront:
    """A front as a page draws it: the very points ``fronts show`` prints (or solved now, not stored)."""

    points: list[dict]
    metric: str
    version: str
    quality: str  # the y-axis
    origin: str  # where the points come from, said under the figure
    verified: list[dict]  # networks verified whole, drawn at their measured accuracy


class Views:
    """What the pages show, read from one store at each request; ``settings`` names the experiment whose block
    table registered targets are solved on, and whose own targets (the run's) are shown beside them."""

    def __init__(self, settings, full_settings: Callable):
        self.settings, self._full, self._full_settings = settings, full_settings, None
        self.store = PerformanceStore(settings.storage_url)
        self._unstored: dict[tuple, list[dict]] = {}  # fronts solved here, by content: never stale

    def full(self):
        """The settings with the search space built (once: it imports torch and builds the space)."""
        if self._full_settings is None:
            self._full_settings = self._full()
        return self._full_settings

    def experiment(self) -> StoredExperiment:
        """The configured experiment's table, predictor and costs as stored now (errors: run it first)."""
        from blocknas.orchestrator.experiments import read_experiment  # imports Ray: only once a page needs it

        return read_experiment(self.full(), self.store)

    def run_targets(self) -> list[str]:
        """The configured experiment's own targets, once it has a front stored (by a run or a solve)."""
        stored = {f.target for f in self.store.front_history() if f.experiment == self.settings.name}
        return [name for name in (t.name for t in self.settings.targets) if name in stored]

    def prepared(self, name: str):
        """(base, entry, its TargetTable) of a registered target, read now: a re-run or a new version shows
        at the next request (tens of milliseconds)."""
        entry = find(self.store, name)
        settings = self.settings if entry.definition.get("scores") else self.full()
        base, entry = prepare(self.store, entry, settings, measure=False)
        return base, entry, target_table(base, entry)

    def front(self, kind: str, name: str) -> ShownFront:
        """A registered target's front (``kind`` "t"), solved on the experiment's table or the library's
        scores, or one of the experiment's own targets' (``kind`` "r")."""
        return self._run_front(name) if kind == RUN else self._registered_front(name)

    def _registered_front(self, name: str, prepared: tuple | None = None) -> ShownFront:
        base, entry, solved = prepared or self.prepared(name)
        metric, budgets = target_budgets(entry)
        max_points = self.settings.solver.max_points
        stored = target_key(base, entry, solved.digest, max_points).stored(self.store)
        points = (
            stored.points
            if stored is not None
            else self._solved_now(
                (REGISTERED, name, entry.version, solved.digest),
                lambda: [
                    point_json(solved.table.slots, p)
                    for p in front_points(solved.table, metric, budgets, max_points, solved.prediction)
                ],
            )
        )
        library = bool(entry.definition.get("scores"))
        return ShownFront(
            points,
            metric,
            entry.version,
            "quality (minus the summed block loss)" if library else "predicted accuracy (%)",
            ("stored" if stored is not None else "solved now, not stored") + f", as `blocknas fronts show {name}` "
            f"prints it; a budget is answered as `blocknas switch {name} --budget X`",
            [],
        )

    def _run_front(self, name: str, found: StoredExperiment | None = None) -> ShownFront:
        from blocknas.orchestrator.pipeline.verify_stage import verified_networks

        found = found or self.experiment()
        if name not in found.costs:
            raise LookupError(
                f"{self.settings.name} has no target named {name!r}; its targets: {', '.join(found.costs)}"
            )
        key = found.front_key(name)
        stored = key.stored(self.store)
        points = (
            found.marked(stored.points)
            if stored is not None
            else self._solved_now((RUN, *key.ident), lambda: found.solved(name))
        )
        origin = (
            ("stored" if stored is not None else "solved now, not stored") + f" (predictor "
            f"{self.settings.solver.predictor}), as `blocknas fronts show {name}` prints it; a budget is "
            f"answered as `blocknas solve solver.budgets.{name}=X`"
        )
        return ShownFront(
            points,
            found.costs[name].target.metric,
            found.costs[name].version,
            "predicted accuracy (%)",
            origin,
            verified_networks(self.store, found.plan, found.table.slots),
        )

    def _solved_now(self, key: tuple, solve: Callable[[], list[dict]]) -> list[dict]:
        """A front no command has stored, solved once per content key (target version and table hash)."""
        if key not in self._unstored:
            self._unstored[key] = solve()
        return self._unstored[key]

    def answer(self, kind: str, name: str, budget: float) -> tuple[ShownFront, dict | None, str, str | None]:
        """(front, point, how it was found, why nothing fits): the best architecture within ``budget``, and
        the front it is drawn on, both from one read of the table."""
        if not 0 <= budget < math.inf:
            raise ValueError(f"the budget must be a finite number >= 0, got {budget:g}")
        if kind == RUN:
            found = self.experiment()
            front = self._run_front(name, found)
            try:
                point = found.best(name, budget)
            except InfeasibleBudgetError as exc:
                return front, None, "", str(exc)
            objective = run_objective(self.settings.space_definition.get("kind"), self.settings.scorer)
            metrics = {target: tc.target.metric for target, tc in found.costs.items()}
            return front, with_answers([point], objective, metrics)[0], "solved now, as `blocknas solve`", None
        prepared = self.prepared(name)
        base, entry, _ = prepared
        result = switching.switch(self.store, base, name, budget, self.settings.solver.max_points, entry)
        answered = with_answers([result.point], registered_objective(entry.definition)) if result.point else [None]
        return (
            self._registered_front(name, prepared),
            answered[0],
            "solved now" if result.solved else "from the stored front",
            result.infeasible,
        )


def _experiments(views: Views, name: str | None):
    experiments = views.store.experiments()
    latest = list({e["name"]: e for e in reversed(experiments)}.values())[::-1]
    if name is None:
        rows = [
            {
                "experiment": e["name"],
                "config": e["config_hash"][:12],
                "recorded": e["created_at"],
                "blocks done": sum(s.status == "done" for s in views.store.block_scores(experiment=e["name"])),
            }
            for e in latest
        ]
        link = {"experiment": lambda r: f"/?e={quote(r['experiment'])}"}
        return [
            html.H2("Experiments"),
            _table(rows, ["experiment", "config", "recorded", "blocks done"], "experiments", link),
        ]
    columns = ["slot", "block", "context", "status", "accuracy", "delta_vs_base", "delta_vs_context"]
    note = (
        "The block's value and its cost on every target show for the experiment the dashboard was started "
        f"with (`blocknas dashboard experiment={name}`)."
    )
    rows = None
    if name == views.settings.name:
        try:
            found = views.experiment()
        except Exception as exc:  # noqa: BLE001 - not measured (or costed) yet: the scores alone, and why
            note = f"No value or cost column: {exc}"
        else:
            scores = views.store.block_scores([b.job_hash for b in found.plan.blocks])
            rows = block_rows(scores, found.table, found.plan.contexts)
            metrics = {t: found.costs[t].target.metric for t in found.table.costs}
            columns = columns[:4] + ["value", *(f"cost.{t}" for t in metrics)] + columns[4:]
            note = (
                "value: the accuracy change the block brings in the table (over every context network); "
                + ", ".join(f"cost.{t}: {m} ({unit_of(m)})" for t, m in metrics.items())
                + "."
            )
    if rows is None:
        rows = block_rows(views.store.block_scores(experiment=name))
    return [
        html.H2(f"Experiment {name}: block table"),
        html.P(
            "accuracy: the block's network, held out; delta vs base: against the slot's first choice in "
            "the same context; delta vs context: against the context network. " + note
        ),
        _table(rows, columns + ["train_seconds", "mlflow_run_id"], "blocks"),
    ]


def _targets(views: Views):
    current = views.store.registered_targets()
    rows = [
        {
            "target": t.name,
            "kind": t.kind,
            "version": t.version[:12],
            "metric": t.definition["metrics"][0],
            "budgets": t.definition.get("budgets") or "",
            "updated": t.updated_at,
        }
        for t in current
    ]
    versions = [v | {"version": v["version"][:12]} for v in views.store.target_versions()]
    return [
        html.H2("Hardware targets"),
        _table(
            rows,
            ["target", "kind", "version", "metric", "budgets", "updated"],
            "targets",
            {"target": lambda r: f"/fronts?t={quote(r['target'])}"},
        ),
        html.H3("Every stored version"),
        _table(versions, ["name", "version", "kind", "created_at", "source"], "versions"),
    ]


def _fronts(views: Views, kind: str | None, name: str | None):
    registered = [t.name for t in views.store.registered_targets()]
    own = views.run_targets()
    links = [
        html.P(
            ["Registered targets: "]
            + [dcc.Link(n, href=f"/fronts?t={quote(n)}", style={"marginRight": "1em"}) for n in registered]
            + ([] if registered else ["none (`blocknas targets add NAME --file F`)"])
        )
    ]
    if own:
        links.append(
            html.P(
                [f"Targets of {views.settings.name}'s runs: "]
                + [dcc.Link(n, href=f"/fronts?r={quote(n)}", style={"marginRight": "1em"}) for n in own]
            )
        )
    if name is None:
        return [html.H2("Fronts"), *links]
    try:
        front = views.front(kind, name)
    except Exception as exc:  # noqa: BLE001 - shown on the page: the reason, as the CLI says it
        return [html.H2(f"Front of {name}"), *links, html.P(str(exc), id="front-error")]
    costs = [p["cost"] for p in front.points] or [0.0]
    low, high = min(costs), max(costs)
    step = (high - low) / 1000 or 1.0
    unit = unit_of(front.metric)
    return [
        html.H2(f"Front of {name} (version {front.version[:12]}) on {views.settings.name}: {len(front.points)} points"),
        *links,
        dcc.Store(id="front-target", data={"kind": kind, "name": name}),
        html.Div(
            [
                html.Label(f"budget, {front.metric} ({unit}): "),
                dcc.Input(
                    id="budget-input", type="number", value=high, debounce=True, step="any", style={"width": "12em"}
                ),
            ]
        ),
        dcc.Slider(
            id="budget-slider", min=low, max=high, value=high, step=step, marks=None, tooltip={"placement": "bottom"}
        ),
        html.Div(id="answer", style={"margin": "1em 0", "fontSize": "1.1em"}),
        dcc.Graph(id="front-graph", figure=_front_figure(name, front, high)),
        html.P(f"Points: {front.origin}.", style={"color": "#666"}),
    ]


def _front_figure(name: str, front: ShownFront, budget: float) -> go.Figure:
    return figures.front_figure(
        name, front.metric, front.points, budget=budget, verified=front.verified, quality=front.quality
    )


def _verified(views: Views):
    results = views.store.all_network_results()
    rows = [
        {
            "experiment": r.experiment,
            "network": r.network_key,
            "measured": r.accuracy,
            "predicted": r.predicted_accuracy,
            "error": (r.accuracy - r.predicted_accuracy) if r.predicted_accuracy is not None else None,
            "round": r.refine_round,
            "source": r.source,
        }
        for r in results
    ]
    figure = go.Figure()
    paired = [r for r in rows if r["predicted"] is not None]
    if paired:
        lo = min(min(r["measured"], r["predicted"]) for r in paired)
        hi = max(max(r["measured"], r["predicted"]) for r in paired)
        figure.add_trace(
            go.Scatter(
                x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured", line={"dash": "dot", "color": "#888"}
            )
        )
        figure.add_trace(
            go.Scatter(
                x=[r["predicted"] for r in paired],
                y=[r["measured"] for r in paired],
                mode="markers",
                name="verified networks",
                text=[r["network"] for r in paired],
                hovertemplate="%{text}<br>predicted %{x:.4g}<br>measured %{y:.4g}<extra></extra>",
            )
        )
    figure.update_layout(
        title="Verified networks: measured vs. predicted accuracy",
        template="plotly_white",
        xaxis_title="predicted accuracy (%)",
        yaxis_title="measured accuracy (%)",
    )
    return [
        html.H2(f"Verified networks ({len(rows)})"),
        dcc.Graph(id="verified-graph", figure=figure)
        if paired
        else html.P("No network verified yet: `blocknas run refine.rounds=N` verifies the solver's picks whole."),
        _table(rows, ["experiment", "network", "measured", "predicted", "error", "round", "source"], "verified"),
    ]


def _history(views: Views):
    fronts = views.store.front_history()
    own = {t.name for t in views.settings.targets}
    registered = {t.name for t in views.store.registered_targets()}
    rows = [
        {
            "computed": f.computed_at,
            "experiment": f.experiment,
            "target": f.target,
            "version": f.target_version[:12],
            "points": len(f.points),
            "cheapest": f.points[0]["cost"] if f.points else None,
            "unit": unit_of(f.metric),
        }
        for f in fronts
    ]

    def link(row):  # the target's front as it is now (a run's own targets: the dashboard's experiment only)
        if row["experiment"] == views.settings.name and row["target"] in own:
            return f"/fronts?{RUN}={quote(row['target'])}"
        return f"/fronts?{REGISTERED}={quote(row['target'])}" if row["target"] in registered else None

    return [
        html.H2("Re-search history"),
        html.P(
            "Every front stored, newest first: by `blocknas run` / `solve`, by `fronts show`, and by "
            "`blocknas scheduler` when a target's version changed. A target links to its front now."
        ),
        _table(
            rows,
            ["computed", "experiment", "target", "version", "points", "cheapest", "unit"],
            "history",
            {"target": link},
        ),
    ]


def create_app(settings, full_settings: Callable) -> Dash:
    views = Views(settings, full_settings)
    app = Dash(__name__, title="blocknas", suppress_callback_exceptions=True, update_title=None)
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            html.Div(
                [
                    html.B("blocknas"),
                    html.Span(
                        f"  {public_url(settings.storage_url)}, experiment {settings.name}", style={"color": "#666"}
                    ),
                ]
                + [dcc.Link(label, href=path, style={"marginLeft": "1.5em"}) for path, label in PAGES],
                style={"borderBottom": "1px solid #ddd", "padding": "0.5em 0"},
            ),
            html.Div(id="page"),
        ],
        style={"fontFamily": "sans-serif", "margin": "0 2em"},
    )

    @app.callback(Output("page", "children"), Input("url", "pathname"), Input("url", "search"))
    def render(path, search):
        query = dict(part.split("=", 1) for part in (search or "").lstrip("?").split("&") if "=" in part)
        if path == "/targets":
            return _targets(views)
        if path == "/fronts":
            kind = RUN if RUN in query else REGISTERED
            return _fronts(views, kind, unquote(query[kind]) if kind in query else None)
        if path == "/verified":
            return _verified(views)
        if path == "/history":
            return _history(views)
        return _experiments(views, unquote(query["e"]) if "e" in query else None)

    @app.callback(
        Output("answer", "children"),
        Output("front-graph", "figure"),
        Output("budget-input", "value"),
        Output("budget-slider", "value"),
        Input("budget-input", "value"),
        Input("budget-slider", "value"),
        State("front-target", "data"),
    )
    def answer(typed, slid, target):
        budget = slid if ctx.triggered_id == "budget-slider" else typed
        if budget is None or not math.isfinite(float(budget)):
            return "Give a budget.", no_update, no_update, no_update
        budget = float(budget)
        kind, name = target["kind"], target["name"]
        try:
            front, point, how, infeasible = views.answer(kind, name, budget)
        except Exception as exc:  # noqa: BLE001 - an invalid budget: said as the CLI says it
            return html.Span(str(exc), id="answer-error"), no_update, no_update, no_update
        figure = _front_figure(name, front, budget)
        if point is None:
            text = html.Span(infeasible, id="answer-error")
        else:
            figure.add_trace(
                go.Scatter(
                    x=[point["cost"]],
                    y=[point["predicted_accuracy"]],
                    mode="markers",
                    name="best within the budget",
                    marker={"size": 16, "symbol": "star", "color": "#d62728"},
                )
            )
            text = html.Div(
                [
                    html.Div(
                        [
                            "best within ",
                            html.B(f"{front.metric} <= {budget:g}"),
                            ": ",
                            html.Code(" ".join(point["blocks"]), id="answer-blocks"),
                        ]
                    ),
                    html.Div(
                        f"predicted {point['predicted_accuracy']:.4f}, {front.metric} "
                        f"{point['cost']:.6g} {unit_of(front.metric)} ({how})",
                        id="answer-detail",
                    ),
                    html.Details(
                        [
                            html.Summary("the answer as JSON (docs/answers.md)"),
                            html.Pre(json.dumps(point["answer"], indent=2), id="answer-json"),
                        ]
                    ),
                ]
            )
        return (
            text,
            figure,
            no_update if ctx.triggered_id == "budget-input" else budget,
            no_update if ctx.triggered_id == "budget-slider" else budget,
        )

    return app


def serve(settings, full_settings: Callable, host: str, port: int) -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    app = create_app(settings, full_settings)
    print(f"blocknas dashboard on http://{host}:{port}/ (read-only; Ctrl-C stops it)", flush=True)
    app.run(host=host, port=port, debug=False)
