"""Hardware-target files: parse every accepted format into one ``TargetData``, or reject the whole file.

Accepted (the format is told by the extension and, for YAML, the top-level keys):

- per-block CSV, header ``slot,block,metric,value``: one cost per row; ``slot`` is the slot's name,
  ``block`` the candidate's name; the slot ``fixed`` (block left empty) holds what every network pays;
- per-block YAML: ``kind`` (``table``, ``analytic`` or ``measured``), optional ``budgets: {metric: limit}``,
  and for tables ``costs: {metric: {fixed: x, SLOT: {BLOCK: value}}}``; analytic targets name ``metrics``
  (``flops``, ``params``), measured ones ``warmup``, ``repeats``, ``threads``, ``device`` (cpu, cuda);
- per-network CSV, header ``architecture,metric,value``: whole-network measurements, the architecture as
  block keys ``SLOT:BLOCK`` separated by spaces. Converted to block costs by substitution, as MathNAS does:
  the base network is the one every other row differs from in exactly one slot, a block's cost is
  ``T(base with it) - T(base)``, and the fixed part is ``T(base)``;
- Once-for-All latency lookup YAML: keys ``OP-input:HxWxC-output:HxWxC[-expand:E-kernel:K-stride:S-idskip:I]``
  mapping to ``{mean: ms}``. Entries with the same input and output shape and stride are one slot, their
  ops (with expand, kernel, idskip) its candidate blocks; a slot with a single candidate is fixed cost;
- Puzzle's block library JSON, as NVIDIA's Puzzle writes it: ``{LAYER: {VARIANT: {"stats": {name: value},
  "metrics": {name: value}}}}`` (layer and variant names kept as they are, tabs included). Every numeric stat
  is a cost (``memory_mib``, ``runtime_ms``, ``num_params``, per sub-block ``attention_memory_mib``, ...),
  every metric a block score (``kl_div``, ``lm_loss``: lower is better). Also the older
  ``{"layers": [{"name": L, "variants": [{"name": V, "stats": ..., "metrics": ...}]}], "budgets": {...}}``.
  The front's metric is ``runtime_ms`` (else ``latency_ms``, ``memory_mib``, the first stat) and the
  objective ``kl_div`` (else the first score) unless ``targets add --metric/--objective`` choose others.

Errors name the file, the line (CSV, YAML) or the path inside the document (JSON), and the problem.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from blocknas.orchestrator.targets.kinds import MeasuredSettings
from blocknas.workers.registry import Registry, did_you_mean
from blocknas.workers.typed import SettingsError, from_mapping

COST_METRICS = ("latency_ms", "energy_mj", "memory_mib", "flops", "params")
LIBRARY_METRIC_ORDER = ("runtime_ms", "latency_ms", "memory_mib")  # a block library's default front metric
LIBRARY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a library's stat or score name
KINDS = ("analytic", "measured", "table")
FIXED = "fixed"


class TargetFileError(ValueError):
    """A target file is invalid; nothing from it was stored."""

    def __init__(self, path: Path, problem: str, line: int | None = None):
        where = f"{path}:{line}" if line else str(path)
        if len(problem) > MAX_PROBLEM:  # a value quoted from a large file
            problem = f"{problem[:MAX_PROBLEM]}... ({len(problem) - MAX_PROBLEM} more characters)"
        super().__init__(f"{where}: {problem}")


MAX_PROBLEM = 1000  # characters of a problem quoted in a message
MAX_FILE_BYTES = 256 * 2**20  # a Puzzle library of an 80-layer model is about 1 MB


@dataclass(frozen=True)
class TargetData:
    """A target's definition, as data: what the registry stores and versions."""

    kind: str
    metrics: tuple[str, ...]
    budgets: dict[str, float] = field(default_factory=dict)
    # table targets: metric -> {"fixed": value, "blocks": {slot: {block: value}}}
    costs: dict[str, dict] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)  # imported block scores: name -> {slot: {block: v}}
    objective: str | None = None  # the score a library is solved for; None: the first
    maximize: bool = False  # the objective is bigger-is-better (an accuracy), not a loss
    settings: dict = field(default_factory=dict)  # measured: warmup, repeats, threads, device when cuda
    source: str = ""  # the format it was read from

    def as_json(self) -> dict:
        out = {
            "kind": self.kind,
            "metrics": list(self.metrics),
            "budgets": self.budgets,
            "costs": self.costs,
            "scores": self.scores,
            "settings": self.settings,
            "source": self.source,
        }
        if self.objective is not None:  # only libraries choose one (older versions keep their hash)
            out["objective"] = self.objective
        if self.maximize:  # likewise: only where it is maximised
            out["maximize"] = True
        return out


def read_target_file(path: str | Path) -> TargetData:
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in TARGET_FORMATS:
        raise TargetFileError(
            path, f"unknown file type '.{suffix}': give a {', '.join('.' + s for s in TARGET_FORMATS.names())} file"
        )
    text = _read_text(path)
    try:
        return TARGET_FORMATS.get(suffix)(path, text)
    except RecursionError:
        raise TargetFileError(path, "nested too deeply: a target file is a few levels of mappings and lists") from None


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte-order mark dropped): a regular file of at most MAX_FILE_BYTES."""
    try:
        if not path.is_file():
            raise TargetFileError(path, "not a regular file: give the path of a target file")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TargetFileError(path, f"cannot read it: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise TargetFileError(path, f"larger than {MAX_FILE_BYTES // 2**20} MiB: not a target file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TargetFileError(path, f"not UTF-8 text (byte {exc.start}): give a CSV, YAML or JSON text file") from None


# ---------------------------------------------------------------------------------------------- numbers
def _number(path: Path, value, what: str, line: int | None = None, signed: bool = False) -> float:
    """A finite number; ``signed`` for per-block costs, which may be differences to a base network."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TargetFileError(path, f"{what}: {value!r} is not a number", line) from None
    if not math.isfinite(number) or (number < 0 and not signed):
        raise TargetFileError(path, f"{what}: {value!r} must be a finite number{'' if signed else ' >= 0'}", line)
    return number


def _metric(path: Path, name, line: int | None = None) -> str:
    if name not in COST_METRICS:
        raise TargetFileError(path, f"unknown metric {name!r}; known: {', '.join(COST_METRICS)}", line)
    return name


class _CostTable(dict):
    """One metric's ``{fixed, blocks}`` costs while a file is read; remembers whether ``fixed`` was given."""

    fixed_given = False


def _put(path: Path, costs: dict, metric: str, slot: str, block: str, value: float, line: int | None) -> None:
    table = costs.setdefault(metric, _CostTable({FIXED: 0.0, "blocks": {}}))
    if slot == FIXED:
        if table.fixed_given:
            raise TargetFileError(path, f"the fixed cost of {metric} is given twice", line)
        table[FIXED], table.fixed_given = value, True
        return
    if block.startswith(f"{slot}:"):  # the block key as `blocknas blocks` prints it
        block = block[len(slot) + 1 :]
    blocks = table["blocks"].setdefault(slot, {})
    if block in blocks:
        raise TargetFileError(path, f"{metric} of {slot}:{block} is given twice", line)
    blocks[block] = value


def _check_complete(path: Path, costs: dict) -> None:
    """Every metric covers the same slots and blocks: a partial table cannot be solved."""
    shapes = {m: {s: sorted(b) for s, b in t["blocks"].items()} for m, t in costs.items()}
    first = next(iter(shapes), None)
    if first is None:
        raise TargetFileError(path, "no costs in the file")
    for metric, shape in shapes.items():
        if shape != shapes[first]:
            missing = {f"{s}:{b}" for s, bs in shapes[first].items() for b in bs} ^ {
                f"{s}:{b}" for s, bs in shape.items() for b in bs
            }
            raise TargetFileError(
                path, f"metrics {first} and {metric} cover different blocks: {', '.join(sorted(missing)[:5])}"
            )
    for metric, table in costs.items():
        # Block costs may be signed (differences to a base network, as MathNAS's tables are); what a
        # network costs in total may not.
        cheapest = table[FIXED] + sum(min(b.values()) for b in table["blocks"].values())
        if cheapest < 0:
            raise TargetFileError(
                path,
                f"{metric}: the cheapest network would cost {cheapest:g} (the fixed part "
                "plus the smallest block of every slot); block costs may be negative, a "
                "network's total may not: raise the fixed part",
            )


# ------------------------------------------------------------------------------------------------- CSV
def _read_csv(path: Path, text: str) -> TargetData:
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise TargetFileError(path, "the file is empty", 1)
    header = [h.strip() for h in rows[0]]
    if header == ["slot", "block", "metric", "value"]:
        return _read_block_csv(path, rows[1:])
    if header == ["architecture", "metric", "value"]:
        return _read_network_csv(path, rows[1:])
    raise TargetFileError(
        path,
        f"header {','.join(header)!r}: expected 'slot,block,metric,value' (per-block costs) "
        "or 'architecture,metric,value' (per-network measurements)",
        1,
    )


def _cells(path: Path, row: list[str], width: int, line: int) -> list[str]:
    if len(row) != width:
        raise TargetFileError(path, f"expected {width} comma-separated values, got {len(row)}", line)
    return [c.strip() for c in row]


def _read_block_csv(path: Path, rows: list[list[str]]) -> TargetData:
    costs: dict = {}
    for line, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        slot, block, metric, value = _cells(path, row, 4, line)
        if not slot or (not block and slot != FIXED):
            raise TargetFileError(path, "slot and block must not be empty (use slot 'fixed' for the fixed part)", line)
        _put(
            path, costs, _metric(path, metric, line), slot, block, _number(path, value, metric, line, signed=True), line
        )
    _check_complete(path, costs)
    return TargetData("table", tuple(costs), costs=costs, source="block_csv")


def _read_network_csv(path: Path, rows: list[list[str]]) -> TargetData:
    measured: dict[str, dict[tuple[tuple[str, str], ...], tuple[float, int]]] = {}
    for line, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        architecture, metric, value = _cells(path, row, 3, line)
        blocks = []
        for key in architecture.split():
            slot, sep, block = key.partition(":")
            if not sep or not slot or not block:
                raise TargetFileError(path, f"architecture block {key!r} is not SLOT:BLOCK", line)
            blocks.append((slot, block))
        if not blocks:
            raise TargetFileError(path, "empty architecture", line)
        per_metric = measured.setdefault(_metric(path, metric, line), {})
        if tuple(blocks) in per_metric:
            raise TargetFileError(path, f"{metric} of {architecture!r} is given twice", line)
        per_metric[tuple(blocks)] = (_number(path, value, metric, line), line)
    if not measured:
        raise TargetFileError(path, "no measurements in the file")
    costs = {metric: _substitute(path, networks) for metric, networks in measured.items()}
    _check_complete(path, costs)
    return TargetData("table", tuple(costs), costs=costs, source="network_csv")


def _substitute(path: Path, networks: dict) -> dict:
    """MathNAS substitution around the one network all others differ from in exactly one slot."""
    archs = list(networks)
    slots = [s for s, _ in archs[0]]
    for arch in archs:
        if [s for s, _ in arch] != slots:
            raise TargetFileError(
                path,
                f"architecture {' '.join(f'{s}:{b}' for s, b in arch)!r} does not have "
                f"the slots {' '.join(slots)} in that order",
                networks[arch][1],
            )

    def distance(a, b) -> int:
        return sum(x != y for x, y in zip(a, b, strict=True))

    bases = [a for a in archs if all(distance(a, other) <= 1 for other in archs)]
    if not bases or len(archs) < 2:
        raise TargetFileError(
            path,
            "no base network: substitution needs one network that every other row differs "
            "from in exactly one slot (MathNAS), plus at least one such row",
        )
    base = bases[0]
    base_value = networks[base][0]
    blocks: dict[str, dict[str, float]] = {slot: {block: 0.0} for slot, block in base}
    for arch, (value, _line) in networks.items():
        for (slot, block), (_, base_block) in zip(arch, base, strict=True):
            if block != base_block:
                blocks[slot][block] = value - base_value
    return {FIXED: base_value, "blocks": blocks}


# ------------------------------------------------------------------------------------------------ YAML
class _LineLoader(yaml.SafeLoader):
    """Safe YAML that remembers each mapping key's line, for error messages, and refuses aliases (``*name``):
    nested anchors expand exponentially (a "YAML bomb"), and no target file needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError(
                f"line {self.peek_event().start_mark.line + 1}: aliases (*name) are not "
                "supported in target files: write the values out"
            )
        return super().compose_node(parent, index)


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        loader.lines[id(mapping), key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, text: str) -> TargetData:
    loader = _LineLoader(text)
    loader.lines = {}
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TargetFileError(
            path, f"not valid YAML: {getattr(exc, 'problem', exc)}", mark.line + 1 if mark else None
        ) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not data:
        raise TargetFileError(path, "expected a mapping at the top level", 1)

    def line(mapping: dict, key) -> int | None:
        return loader.lines.get((id(mapping), key))

    if "kind" in data or "costs" in data:
        return _read_block_yaml(path, data, line)
    return _read_ofa(path, data, line)


def _read_block_yaml(path: Path, data: dict, line) -> TargetData:
    unknown = sorted(set(data) - {"kind", "budgets", "costs", "metrics", "warmup", "repeats", "threads", "device"})
    if unknown:
        raise TargetFileError(path, f"unknown keys {unknown}", line(data, unknown[0]))
    kind = data.get("kind", "table")
    if kind not in KINDS:
        raise TargetFileError(path, f"kind must be one of {', '.join(KINDS)}, got {kind!r}", line(data, "kind"))
    budgets_in = data.get("budgets") or {}
    if not isinstance(budgets_in, dict):
        raise TargetFileError(path, "budgets must map metrics to limits", line(data, "budgets"))
    budgets = {
        _metric(path, m, line(budgets_in, m)): _number(path, v, f"budgets.{m}", line(budgets_in, m))
        for m, v in budgets_in.items()
    }
    if kind == "analytic":
        metrics = data.get("metrics") or []
        if not metrics or not isinstance(metrics, list) or any(m not in ("flops", "params") for m in metrics):
            raise TargetFileError(path, "analytic targets list metrics among flops, params", line(data, "metrics"))
        return TargetData(kind, tuple(metrics), budgets, source="yaml")
    if kind == "measured":
        return TargetData(kind, ("latency_ms",), budgets, settings=_measured(path, data, line), source="yaml")
    costs = _block_costs(path, data.get("costs"), line(data, "costs"), line)
    return TargetData("table", tuple(costs), budgets, costs=costs, source="block_yaml")


def _measured(path: Path, data: dict, line) -> dict:
    """A measured target's settings: the run's ``measured`` kind's typed settings and defaults (targets.kinds)."""
    given = {k: data[k] for k in ("warmup", "repeats", "threads", "device") if k in data}
    try:
        settings = from_mapping(MeasuredSettings, {"kind": "measured", **given}, "target")
    except (SettingsError, ValueError) as exc:
        message = str(exc).removeprefix("target: ")
        key = next((k for k in given if k in message), next(iter(given), "kind"))  # the line of the key it names
        raise TargetFileError(path, message, line(data, key)) from None
    found = {"warmup": settings.warmup, "repeats": settings.repeats, "threads": settings.threads}
    # the device only when a GPU: a CPU target's definition (its version) is what it always was
    return found | ({"device": settings.device} if settings.device != "cpu" else {})


def _block_costs(path: Path, costs_in, costs_line, line) -> dict:
    """``costs: {metric: {fixed: x, SLOT: {BLOCK: value}}}`` of a block YAML, checked complete."""
    if not isinstance(costs_in, dict) or not costs_in:
        raise TargetFileError(
            path, "a table target needs costs: {metric: {fixed: x, SLOT: {BLOCK: value}}}", costs_line or 1
        )
    costs: dict = {}
    for metric, slots in costs_in.items():
        _metric(path, metric, line(costs_in, metric))
        if not isinstance(slots, dict):
            raise TargetFileError(path, f"costs.{metric} must map slots to blocks", line(costs_in, metric))
        for slot, blocks in slots.items():
            where = line(slots, slot)
            if slot == FIXED:
                _put(
                    path,
                    costs,
                    metric,
                    FIXED,
                    "",
                    _number(path, blocks, f"costs.{metric}.fixed", where, signed=True),
                    where,
                )
                continue
            if not isinstance(blocks, dict) or not blocks:
                raise TargetFileError(path, f"costs.{metric}.{slot} must map blocks to values", where)
            for block, value in blocks.items():
                at = line(blocks, block)
                _put(
                    path,
                    costs,
                    metric,
                    str(slot),
                    str(block),
                    _number(path, value, f"costs.{metric}.{slot}.{block}", at, signed=True),
                    at,
                )
    _check_complete(path, costs)
    return costs


_OFA_KEY = re.compile(r"^(?P<op>[A-Za-z_]+)-input:(?P<input>\d+(?:x\d+)*)-output:(?P<output>\d+(?:x\d+)*)(?P<rest>.*)$")


def _read_ofa(path: Path, data: dict, line) -> TargetData:
    blocks: dict[str, dict[str, float]] = {}
    for key, entry in data.items():
        at = line(data, key)
        match = _OFA_KEY.match(str(key))
        if not match:
            raise TargetFileError(path, f"key {key!r} is not an OFA lookup key OP-input:HxWxC-output:HxWxC[-...]", at)
        if not isinstance(entry, dict) or "mean" not in entry:
            raise TargetFileError(path, f"{key}: expected a mapping with 'mean' (milliseconds)", at)
        fields = dict(part.split(":", 1) for part in match["rest"].strip("-").split("-") if ":" in part)
        slot = f"{match['input']}>{match['output']}/s{fields.pop('stride', '1')}"
        block = "-".join([match["op"], *(f"{k}{v}" for k, v in sorted(fields.items()))])
        value = _number(path, entry["mean"], f"{key}.mean", at)
        if block in blocks.setdefault(slot, {}):
            raise TargetFileError(path, f"{key}: a second entry for block {block} of slot {slot}", at)
        blocks[slot][block] = value
    fixed = sum(next(iter(b.values())) for b in blocks.values() if len(b) == 1)
    searchable = {slot: b for slot, b in blocks.items() if len(b) > 1}
    if not searchable:
        raise TargetFileError(path, "no slot has more than one candidate block: nothing to search")
    costs = {"latency_ms": {FIXED: fixed, "blocks": searchable}}
    return TargetData("table", ("latency_ms",), costs=costs, source="ofa_yaml")


# ------------------------------------------------------------------------------------------------ JSON
def _older_library_layers(path: Path, layers_in: list) -> dict:
    """``{"layers": [{"name": ..., "variants": [{"name": ..., "stats": ...}]}]}`` as ``{layer: {variant: ...}}``."""
    layers: dict = {}
    for i, layer in enumerate(layers_in):
        if not isinstance(layer, dict) or not isinstance(layer.get("variants"), list) or not layer["variants"]:
            raise TargetFileError(path, f"layers[{i}]: expected a name and a non-empty list of variants")
        variants = {}
        for j, variant in enumerate(layer["variants"]):
            if not isinstance(variant, dict) or not variant.get("name"):
                raise TargetFileError(path, f"layers[{i}].variants[{j}]: expected a name and stats")
            variants[str(variant["name"])] = variant
        if not layer.get("name"):
            raise TargetFileError(
                path,
                f"layers[{i}] has no name: give every layer the name the space uses "
                "for its slot (a position would silently match another slot)",
            )
        if str(layer["name"]) in layers:
            raise TargetFileError(path, f"layers[{i}]: layer {layer['name']!r} is given twice")
        layers[str(layer["name"])] = variants
    return layers


def _library_stats(path: Path, layers: dict) -> tuple[dict, dict]:
    """Each variant's ``stats`` as costs and its ``metrics`` as scores, by metric, layer and variant."""
    costs: dict = {}
    scores: dict = {}
    for slot, variants in layers.items():
        if not isinstance(variants, dict) or not variants:
            raise TargetFileError(path, f"{slot}: expected a mapping of variant names to their stats and metrics")
        for block, variant in variants.items():
            at = f"{slot}.{block!r}"
            if not isinstance(variant, dict) or not isinstance(variant.get("stats"), dict):
                raise TargetFileError(path, f'{at}: expected {{"stats": {{...}}, "metrics": {{...}}}}')
            for section in ("stats", "metrics"):
                for name, value in (variant.get(section) or {}).items():
                    if not LIBRARY_NAME.match(str(name)):
                        raise TargetFileError(path, f"{at}.{section}: {name!r} is not a name (letters, digits, _)")
                    number = _number(path, value, f"{at}.{section}.{name}", signed=section == "metrics")
                    if section == "stats":
                        _put(path, costs, str(name), str(slot), str(block), number, None)
                    else:
                        scores.setdefault(str(name), {}).setdefault(str(slot), {})[str(block)] = number
    return costs, scores


def _read_puzzle(path: Path, text: str) -> TargetData:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetFileError(path, f"not valid JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(data, dict) or not data:
        raise TargetFileError(
            path,
            'expected a Puzzle block library: {"layer_0": {"VARIANT": {"stats": {...}, "metrics": {...}}, ...}, ...}',
        )
    budgets_in, bigger_is_better = {}, False
    layers = data
    if isinstance(data.get("layers"), list):  # the older shape, with the library's own settings beside
        layers = _older_library_layers(path, data["layers"])
        budgets_in = data.get("budgets") or {}
        if not isinstance(budgets_in, dict):
            raise TargetFileError(path, "budgets: expected {metric: limit}")
        bigger_is_better = data.get("bigger_is_better", False)
        if not isinstance(bigger_is_better, bool):
            raise TargetFileError(path, f"bigger_is_better: expected true or false, got {bigger_is_better!r}")
    costs, scores = _library_stats(path, layers)
    # Scores and stats checked together: a variant without metrics would silently drop out of every front.
    _check_complete(
        path,
        {
            **{f"stats.{m}": t for m, t in costs.items()},
            **{f"metrics.{m}": {FIXED: 0.0, "blocks": b} for m, b in scores.items()},
        },
    )
    metrics = sorted(costs, key=lambda m: LIBRARY_METRIC_ORDER.index(m) if m in LIBRARY_METRIC_ORDER else 99)
    budgets = {library_name(path, m, metrics, "stats"): _number(path, v, f"budgets.{m}") for m, v in budgets_in.items()}
    return TargetData(
        "table", tuple(metrics), budgets, costs=costs, scores=scores, maximize=bigger_is_better, source="puzzle_json"
    )


def library_name(where, name: str, known, section: str) -> str:
    """A library's stat or score by its name or by Puzzle's dotted path (``stats.memory_mib``,
    ``metrics.kl_div``); an unknown one is an error listing what the library has."""
    plain = name.split(".", 1)[1] if name.startswith(f"{section}.") else name
    if plain not in known:
        hint = did_you_mean(plain, known)
        raise TargetFileError(
            where,
            f"{section}.{plain}: no such {'stat' if section == 'stats' else 'score'} in "
            f"this library{hint}; it has {', '.join(f'{section}.{k}' for k in known)}",
        )
    return plain


# Readers by file suffix: ``reader(path, text) -> TargetData``. A format of one's own registers here or as an
# entry point of ``blocknas.target_formats`` named by its suffix (e.g. ``parquet = my_pkg.readers:read``).
TARGET_FORMATS: Registry = Registry("target_format")
for _suffix, _reader in (("csv", _read_csv), ("yaml", _read_yaml), ("yml", _read_yaml), ("json", _read_puzzle)):
    TARGET_FORMATS.register(_suffix, _reader)
