"""One answer schema: a network as every command and file gives it (``pick``, ``switch``, ``fronts show``,
``solve``'s ``best``, ``summary.json``), versioned and documented in docs/answers.md.

    {"schema": "blocknas.answer/1",
     "choices": {"<slot>": "<block>", ...},                      # the network, one block per slot
     "objective": {"name": "accuracy", "unit": "%", "direction": "maximize",
                   "predicted": 71.3, "measured": 70.9},         # measured: only where it was verified
     "costs": {"<target or metric>": {"value": 1.2e6, "unit": "MACs"}, ...},
     "extrapolated": false}                                      # predicted outside the measured range

Stored front points keep their compact form (``blocks`` as ``slot:choice``, ``predicted_accuracy`` where higher
is better, ``costs``); ``network_answer`` turns one into the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from blocknas.orchestrator.plots.units import unit_of

SCHEMA = "blocknas.answer/1"


@dataclass(frozen=True)
class Objective:
    """What ``predicted_accuracy`` stands for: higher is better there; ``minimize`` reports it negated."""

    name: str = "accuracy"
    unit: str = "%"
    direction: str = "maximize"

    @property
    def axis_label(self) -> str:
        """How a plot of stored values (higher is better) names its axis."""
        if self == ACCURACY:
            return "accuracy (%)"
        unit = "" if self.unit == self.name else f" ({self.unit})"
        return f"{self.name}{unit}" if self.direction == "maximize" else f"minus {self.name}{unit}, higher is better"

    def value(self, predicted_accuracy: float | None) -> float | None:
        if predicted_accuracy is None:
            return None
        return predicted_accuracy if self.direction == "maximize" else -predicted_accuracy


ACCURACY = Objective()
KL_DIVERGENCE = Objective("kl_divergence", "nats", "minimize")  # language models: -KL is the stored accuracy


def objective_of_space(space_kind: str | None) -> Objective:
    return KL_DIVERGENCE if space_kind == "llm" else ACCURACY


def run_objective(space_kind: str | None, scorer) -> Objective:
    """A run's objective: ``scorer.objective`` where it names another key of the result (a loss, minimised:
    stored negated), else that of its space (accuracy, or a language model's KL divergence)."""
    if scorer.objective == "accuracy":
        return objective_of_space(space_kind)
    return Objective(scorer.objective, unit_of(scorer.objective), scorer.direction)


def library_objective(metric: str, maximize: bool = False) -> Objective:
    """A registered library's score (``--objective``): a loss, lower is better and stored negated; or, with
    ``--maximize`` (an accuracy), higher is better and stored as it is."""
    return Objective(f"metrics.{metric}", unit_of(metric), "maximize" if maximize else "minimize")


def registered_objective(definition: dict) -> Objective:
    """A registered target's objective: its library's score where it brings one, else predicted accuracy."""
    objective = definition.get("objective")
    return library_objective(objective, bool(definition.get("maximize"))) if objective else ACCURACY


def network_answer(point: dict, objective: Objective = ACCURACY, metrics: dict[str, str] | None = None) -> dict:
    """The answer for a stored front point (``blocks``, ``predicted_accuracy``, ``costs``; where verified,
    ``verified_accuracy``; where predicted beyond the measurements, ``outside_measured``). ``metrics``: each
    cost's metric where the costs are keyed by target name (a run's targets), for its unit."""
    metrics = metrics or {}
    measured = point.get("verified_accuracy")
    return {
        "schema": SCHEMA,
        "choices": dict(b.split(":", 1) for b in point["blocks"]),
        "objective": {
            "name": objective.name,
            "unit": objective.unit,
            "direction": objective.direction,
            "predicted": objective.value(point.get("predicted_accuracy")),
            **({"measured": objective.value(measured)} if measured is not None else {}),
        },
        "costs": {k: {"value": v, "unit": unit_of(metrics.get(k, k))} for k, v in point["costs"].items()},
        "extrapolated": bool(point.get("outside_measured")),
    }


def with_answers(points: list[dict], objective: Objective = ACCURACY, metrics: dict[str, str] | None = None) -> list:
    """Each point with its ``answer``."""
    return [p | {"answer": network_answer(p, objective, metrics)} for p in points]


def front_cap(points: list, max_points: int) -> dict:
    """Whether a front may have been cut at ``solver.max_points`` (it holds that many points)."""
    return {"points": len(points), "max_points": max_points, "capped": len(points) >= max_points}


def mark_extrapolations(point: dict, ranges: dict) -> dict:
    """``point`` with ``outside_measured``: what it predicts outside the range of what was measured."""
    values = {"accuracy": point["predicted_accuracy"], **point["costs"]}
    outside = [k for k, (lo, hi) in ranges.items() if k in values and not lo - 1e-9 <= values[k] <= hi + 1e-9]
    return point | {"outside_measured": outside} if outside else point
