"""LayerNAS (Fan et al., 2023): multi-objective search layer by layer, over cost buckets.

A network is a choice per slot ("layer"). The search starts from the cheapest allowed network. At layer
``i`` every kept candidate is expanded into one child per option of slot ``i``; the children that are
allowed (connected, within the budget: known without training) and not evaluated before are evaluated
(one batch per layer: parallel jobs), then bucketed by cost (``buckets`` equal-width buckets between the
start's cost and the budget) and the ``per_bucket`` most accurate of each bucket are kept: "if two models
cost the same, keep the more accurate one". Cheap partial networks survive beside accurate ones, so later
slots still have budget to spend; the work per layer is polynomial (kept x options), not exponential.

When the last slot is done and evaluations remain, another sweep starts over the slots from the kept
candidates, until the evaluations are spent or a sweep finds no network not evaluated before. A network is
never evaluated twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Selection = tuple[int, ...]


@dataclass(frozen=True)
class LayerNasSettings:
    buckets: int = 4  # cost buckets per layer, between the start's cost and the budget
    per_bucket: int = 1  # candidates kept per bucket

    def __post_init__(self) -> None:
        for name in ("buckets", "per_bucket"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"layernas.{name} must be an integer >= 1, got {value!r}")

    @classmethod
    def from_dict(cls, values: dict | None) -> LayerNasSettings:
        values = dict(values or {})
        unknown = sorted(set(values) - {"buckets", "per_bucket"})
        if unknown:
            raise ValueError(f"layernas: unknown keys {unknown}; valid keys: buckets, per_bucket")
        return cls(**values)


@dataclass
class LayerNasResult:
    accuracy: dict[Selection, float] = field(default_factory=dict)  # every evaluated network, in order
    kept: list[list[Selection]] = field(default_factory=list)  # the candidates kept after each layer
    sweeps: int = 0

    @property
    def evaluated(self) -> list[Selection]:
        return list(self.accuracy)

    @property
    def pick(self) -> Selection | None:
        return max(self.accuracy, key=self.accuracy.get) if self.accuracy else None


def layernas(
    sizes: Sequence[int],
    cost: Callable[[Selection], float],
    allowed: Callable[[Selection], bool],
    evaluate: Callable[[list[Selection]], dict[Selection, float]],
    budget: float,
    evaluations: int,
    start: Selection,
    settings: LayerNasSettings = LayerNasSettings(),
) -> LayerNasResult:
    """Search ``sizes`` (options per slot) with at most ``evaluations`` calls' worth of networks.

    ``start`` must be allowed (the cheapest allowed network is LayerNAS's choice); ``evaluate`` gets each
    layer's new children at once and returns their accuracies; ``cost`` and ``allowed`` are free.
    """
    if not allowed(start):
        raise ValueError(f"the start network {start} is not allowed (over the budget or not connected)")
    result = LayerNasResult()
    result.accuracy |= evaluate([start])
    kept, low = [start], cost(start)
    width = max(budget - low, 1e-12) / settings.buckets
    while len(result.accuracy) < evaluations:
        result.sweeps += 1
        new_in_sweep = 0
        for slot, options in enumerate(sizes):
            children = list(dict.fromkeys(k[:slot] + (o,) + k[slot + 1 :] for k in kept for o in range(options)))
            children = [c for c in children if allowed(c)]
            fresh = [c for c in children if c not in result.accuracy][: evaluations - len(result.accuracy)]
            if fresh:
                result.accuracy |= evaluate(fresh)
                new_in_sweep += len(fresh)
            buckets: dict[int, list[Selection]] = {}
            for child in (c for c in children if c in result.accuracy):
                buckets.setdefault(min(settings.buckets - 1, int((cost(child) - low) / width)), []).append(child)
            kept = [
                c
                for members in buckets.values()
                for c in sorted(members, key=result.accuracy.get, reverse=True)[: settings.per_bucket]
            ] or kept
            result.kept.append(list(kept))
            if len(result.accuracy) >= evaluations:
                break
        if not new_in_sweep:
            break
    return result
