"""``blocknas``: the command-line entry points.

    blocknas run    [HYDRA OVERRIDES...]   measure missing blocks on Ray, then solve every target
    blocknas solve  [HYDRA OVERRIDES...]   only the solver stage, from the stored table
    blocknas blocks [--json] [--experiment NAME] [--status STATUS] [HYDRA OVERRIDES...]
    blocknas bench nb201 [bench.KEY=VALUE...]   a MathNAS variant against NAS-Bench-201 ground truth
    blocknas db upgrade|current [storage.url=...]  migrate the performance table / show its schema revision
    blocknas targets list|show NAME|add NAME --file F|update NAME --file F|remove NAME [--json]
    blocknas fronts show TARGET [--json] [OVERRIDES...]      the target's current Pareto front
    blocknas switch TARGET --budget X [--measured M --predicted P] [--json]   best stored architecture
    blocknas scheduler [scheduler.KEY=VALUE...]   re-solve fronts when targets change, and on cron
    blocknas dashboard [--port 8050] [OVERRIDES]   read-only web app on 127.0.0.1 (experiments, fronts, history)
    blocknas config show [OVERRIDES...]   print the composed, validated config
    blocknas plugins                       every registry: spaces, blocks, datasets, scorers, estimators, ...

Every command that reads a config takes --config-dir DIR (a config tree of your own, in front of the
packaged one) and --config-name NAME (its primary config; default: config).

Exit codes: 0 success, 1 a run failed (blocks failed, results missing, storage down), 2 bad input
(config, overrides, infeasible budgets), 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blocknas",
        description="Blockwise neural architecture search: measure each block once, solve for every target.",
        epilog="Overrides use Hydra syntax, e.g.: blocknas run experiment=smoke cluster.num_cpus=2",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config-dir",
        help="a config tree of your own (groups such as space/, scorer/, "
        "experiment/), searched before the packaged one",
    )
    common.add_argument("--config-name", default="config", help="the primary config (default: config)")
    _add = sub.add_parser

    def add_parser(name, **kwargs):
        return _add(name, parents=[common], **kwargs)

    sub.add_parser = add_parser
    for name, help_text in (
        ("run", "measure the blocks not yet in the table (Ray), then solve every target's Pareto front"),
        ("solve", "re-run only the solver stage from the table; accepts solver.budgets.TARGET=VALUE"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smoke")
        cmd.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        cmd.add_argument(
            "-m",
            "--multirun",
            action="store_true",
            help="Hydra multirun: a,b,c and range() sweeps; every combination is validated first, "
            "then run one after another",
        )
    blocks = sub.add_parser("blocks", help="list the block results the performance table holds")
    blocks.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides: the experiment whose blocks are listed (experiment=smoke) and the store",
    )
    blocks.add_argument("--json", action="store_true", help="print JSON instead of a table")
    shown = blocks.add_mutually_exclusive_group()
    shown.add_argument("--experiment", help="this experiment's blocks (default: the composed config's)")
    shown.add_argument("--all", action="store_true", help="every experiment's blocks")
    blocks.add_argument(
        "--status", choices=("queued", "running", "done", "failed"), help="only blocks with this status"
    )
    export = sub.add_parser(
        "export-library",
        help="an LLM experiment's measured blocks as a block library in Puzzle's JSON format (no Ray, no training)",
    )
    export.add_argument("output", help="the JSON file to write")
    export.add_argument("--force", action="store_true", help="replace the file if it exists")
    export.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=puzzle_tiny")
    child = sub.add_parser(
        "export-child",
        help="the best LLM child within solver.budgets, assembled from the "
        "run's distilled blocks and saved as a model directory",
    )
    child.add_argument("directory", help="a new directory for the child's config, weights and blocknas.json")
    child.add_argument(
        "--format",
        default="hf",
        help="hf (default): the Nemotron-NAS layout that transformers (trust_remote_code=True) and vLLM load; "
        "blocknas: blocknas's own files, read by workers.llm.decoder.load_decoder",
    )
    child.add_argument(
        "--global-steps",
        type=int,
        default=0,
        metavar="N",
        help="globally distil the assembled child against the parent for N steps before saving "
        "(Puzzle's GKD: KL on logits + cosine on hidden states; default 0: off)",
    )
    child.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    child.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. solver.budgets.params=60000")
    db = sub.add_parser("db", help="the performance table's schema: `upgrade` migrates it, `current` shows it")
    db.add_argument("action", choices=("upgrade", "current"))
    db.add_argument("overrides", nargs="*", help="Hydra overrides selecting the store, e.g. storage.url=...")
    targets = sub.add_parser(
        "targets",
        help="the hardware-target registry: list, show, add, update, remove",
        epilog="files: per-block CSV/YAML, per-network CSV, OFA latency YAML, Puzzle JSON "
        "(see README, Hardware targets)",
    )
    targets.add_argument("action", choices=("list", "show", "add", "update", "remove"))
    targets.add_argument("name", nargs="?", help="the target (show, add, update, remove)")
    targets.add_argument("--file", help="add, update: the target file")
    targets.add_argument(
        "--metric",
        help="add, update: the front's metric (default: the file's first; for a "
        "Puzzle library runtime_ms), e.g. stats.runtime_ms",
    )
    targets.add_argument(
        "--objective", help="add, update: the library score solved for (default: kl_div), e.g. metrics.lm_loss"
    )
    direction = targets.add_mutually_exclusive_group()
    direction.add_argument(
        "--maximize",
        dest="maximize",
        action="store_true",
        default=None,
        help="add, update: the library's objective is bigger-is-better (an accuracy), as Puzzle's bigger_is_better",
    )
    direction.add_argument(
        "--minimize", dest="maximize", action="store_false", help="add, update: it is a loss (the default)"
    )
    targets.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="NAME=MAX|NAME=MIN:MAX",
        help="add, update: a budget the target's networks keep, e.g. stats.memory_mib=80000 (repeatable)",
    )
    targets.add_argument("--json", action="store_true", help="print JSON")
    targets.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides selecting the store, e.g. storage.url=...; add, update: with experiment=... (or "
        "space=...) a per-block file is checked against that space before it is stored",
    )
    fronts = sub.add_parser(
        "fronts",
        help="a target's current Pareto front, registered or the experiment's own "
        "(solved once per inputs, shared with `run`)",
    )
    fronts.add_argument("action", choices=("show",))
    fronts.add_argument("target")
    fronts.add_argument("--json", action="store_true", help="print JSON")
    fronts.add_argument("overrides", nargs="*", help="Hydra overrides: the experiment whose block table to use")
    switch = sub.add_parser("switch", help="the best stored architecture of a target for a new budget")
    switch.add_argument("target")
    switch.add_argument("--budget", type=float, required=True, help="the new budget, in the target's metric")
    switch.add_argument("--measured", type=float, help="correction: the running network's measured cost")
    switch.add_argument("--predicted", type=float, help="correction: its predicted cost (rescales the target)")
    switch.add_argument("--json", action="store_true", help="print JSON")
    switch.add_argument("overrides", nargs="*", help="Hydra overrides: the experiment whose block table to use")
    pick = sub.add_parser(
        "pick",
        help="the best architectures of a registered target within budgets "
        "(Puzzle's mip_nas): one, or --num-solutions diverse ones",
    )
    pick.add_argument("target")
    pick.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="NAME=MAX|NAME=MIN:MAX",
        help="a budget on top of the target's own, e.g. stats.memory_mib=80000 (repeatable)",
    )
    pick.add_argument("--num-solutions", type=int, default=1, help="how many solutions (default 1)")
    pick.add_argument(
        "--minimal-diversity", type=int, default=1, help="layers in which every two solutions differ (default 1)"
    )
    pick.add_argument("--json", action="store_true", help="print JSON")
    pick.add_argument("overrides", nargs="*", help="Hydra overrides: the experiment whose block table to use")
    scheduler = sub.add_parser(
        "scheduler",
        help="keep every registered target's front current (runs until "
        "SIGTERM): re-solves on new target versions and on cron",
    )
    scheduler.add_argument("overrides", nargs="*", help="e.g. scheduler.poll_seconds=2 +scheduler.watch.phone=f.csv")
    dashboard = sub.add_parser(
        "dashboard",
        help="a read-only web app over the performance table: experiments, "
        "targets, fronts with a budget control (as `switch`), verified "
        "networks, re-search history",
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    dashboard.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides: the store and the experiment whose block table targets are solved on",
    )
    bench = sub.add_parser(
        "bench",
        help="measure a method variant against a tabular benchmark's ground truth",
        epilog="e.g. blocknas bench nb201 bench.dataset=cifar100 bench.hardware=pixel3 "
        "bench.latency_csv=../shared/data/nb201_latency_ms.csv bench.predictor=flops",
    )
    bench.add_argument("benchmark", choices=("nb201",), help="the benchmark (conf/bench/NAME.yaml)")
    bench.add_argument("overrides", nargs="*", help="Hydra overrides of bench.*, e.g. bench.estimator=sampled")
    config = sub.add_parser("config", help="`show`: print the composed config after validating it")
    config.add_argument("action", choices=("show",))
    config.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smoke")
    _add(
        "plugins",
        help="list every registry's entries (spaces, blocks, datasets, scorers, estimators, "
        "predictors, target kinds and file formats), built-in and installed",
    )
    return parser


def _quiet_libraries() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("alembic", "mlflow", "ray", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")


def _terminated(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


# Commands on the store, or on a block library that brings its own scores, build no search space (torch,
# the data set): ``full`` builds it when a command turns out to need the experiment's table.
STORE_COMMANDS = ("targets", "db", "blocks", "fronts", "switch", "pick", "dashboard")


def _command(args) -> int:
    """Run the parsed command; its errors are classified by ``main``."""
    if args.command == "plugins":
        return _plugins()
    # Imported here so that `blocknas --help` and argument errors answer instantly.
    from blocknas.orchestrator.config import ConfigSource, load_settings

    if args.command in SOLVING_COMMANDS:
        from blocknas.solvers.limits import time_limit

        time_limit()  # a bad BLOCKNAS_SOLVER_TIME_LIMIT is refused before any work
    if args.command == "bench":
        return _bench(args)
    if args.command == "targets" and args.name and "=" in args.name:  # an override, not a name
        args.overrides, args.name = [args.name, *args.overrides], None
    source = ConfigSource(args.config_dir, args.config_name)
    if getattr(args, "multirun", False):
        return _multirun(args, source)
    if args.command == "config":
        return _config_show(args.overrides, source)
    settings = load_settings(args.overrides, source, check_space=args.command not in STORE_COMMANDS)

    @functools.cache
    def full():
        return settings if settings.space is not None else load_settings(args.overrides, source)

    handlers = {
        "targets": lambda: _targets(settings.storage_url, args, full),
        "fronts": lambda: _fronts(settings, args, full),
        "switch": lambda: _fronts(settings, args, full),
        "pick": lambda: _fronts(settings, args, full),
        "scheduler": lambda: _scheduler(settings),
        "dashboard": lambda: _dashboard(settings, full, args.host, args.port),
        "db": lambda: _db(settings.storage_url, args.action),
        "blocks": lambda: _blocks(settings, args),
        "export-library": lambda: _export_library(settings, Path(args.output), args.force),
        "export-child": lambda: _export_child(
            settings, Path(args.directory), args.global_steps, not args.no_progress, args.format
        ),
    }
    return handlers.get(args.command, lambda: _search(settings, args))()


def _search(settings, args) -> int:
    """``blocknas run`` or ``solve``: the job, then where its results are."""
    from blocknas.orchestrator.jobs.run import run_search, run_solve
    from blocknas.orchestrator.tracking import ui_command

    result = run_search(settings, not args.no_progress) if args.command == "run" else run_solve(settings)
    print(f"\nMLflow UI: {ui_command(settings.tracking.uri)}")
    if view := result.summary.get("mlflow_block_view"):
        print(f"  then open {view}\n  (this search's block runs, flat: value, deltas and cost on every target)")
    if (figures := result.summary_path.parent / "figures.html").exists():
        print(f"figures: {figures}")
    print(f"summary: {result.summary_path}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides after an option (`run --no-progress a=b`) end up in `extra`: they are overrides too.
    if [a for a in extra if a.startswith("-")] or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    _quiet_libraries()
    previous = None
    if args.command in ("run", "solve", "export-child") and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)  # `kill`, a container stop: as on Ctrl-C
    # A user's own spaces, blocks, data loaders and scorers named by import path are found in the working
    # directory after every installed package (workers.registry): nothing else is imported from it.
    try:
        return _command(args)
    except BrokenPipeError:  # the reader went away (`blocknas fronts show X | head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - classified by type below; anything else is a bug: re-raised
        code = _exit_code(exc)
        if code is None:
            raise
        print(f"blocknas: error: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print(
            "blocknas: interrupted"
            + (
                "; finished blocks are stored, the next run measures only the rest"
                if args.command == "run"
                else "; nothing was stored"
            ),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                ray.shutdown()


# The errors that are the user's input (exit 2) or a failed run (exit 1), by qualified class name: naming
# them here, rather than importing them, keeps commands that need no torch, Ray or MLflow from loading them.
BAD_INPUT_ERRORS = {
    "blocknas.orchestrator.settings.ConfigError",
    "blocknas.solvers.points.InfeasibleBudgetError",
    "blocknas.orchestrator.bench.nb201.BenchConfigError",
    "blocknas.workers.tabular.TabularDataError",
    "blocknas.orchestrator.targets.files.TargetFileError",
    "blocknas.orchestrator.targets.registry.TargetRegistryError",
    "blocknas.orchestrator.deploy.fronts.TargetMismatchError",
    "blocknas.orchestrator.targets.budgets.BudgetError",
    "blocknas.solvers.limits.SolverSettingError",
    "blocknas.orchestrator.output_files.OutputPathError",
    "blocknas.workers.llm.text.TextError",
    "blocknas.workers.proxies.ProxyInputError",
    "blocknas.orchestrator.distributed.tasks.ScorerContractError",
    "blocknas.workers.llm.hf.ParentError",
    "blocknas.workers.llm.child_formats.ChildFormatError",
}
SOLVING_COMMANDS = ("run", "solve", "fronts", "switch", "pick", "scheduler", "dashboard", "export-child", "bench")
RUN_FAILED_ERRORS = {
    "blocknas.orchestrator.jobs.run.BlockFailuresError",
    "blocknas.orchestrator.pipeline.solve_stage.MissingScoresError",
    "blocknas.orchestrator.pipeline.cost_stage.MissingCostsError",
    "blocknas.orchestrator.storage._store.StorageError",
    "blocknas.solvers.limits.SolverTimeLimitError",
    "blocknas.orchestrator.output_files.OutputError",
}


def _exit_code(exc: BaseException) -> int | None:
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}
    if names & BAD_INPUT_ERRORS:
        return EXIT_BAD_INPUT
    if names & RUN_FAILED_ERRORS:
        return EXIT_FAILED
    return None


def sweep(overrides: list[str]) -> list[list[str]]:
    """Every combination of Hydra sweep overrides (``a=1,2 b=range(0,3)``), in Hydra's BasicSweeper order."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from blocknas.orchestrator.settings import ConfigError

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(str(exc)) from exc
    choices = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
        for o in parsed
    ]
    return [list(combo) for combo in itertools.product(*choices)]


def _multirun(args, source) -> int:
    """Validate every job of the sweep before any runs; run them in turn; one line per job at the end."""
    from blocknas.orchestrator.config import ConfigError, load_settings
    from blocknas.orchestrator.jobs.run import run_search, run_solve

    jobs = sweep(args.overrides)
    settings = []
    for number, overrides in enumerate(jobs, start=1):
        try:
            settings.append(load_settings(overrides, source))
        except ConfigError as exc:
            raise ConfigError(f"multirun job {number}/{len(jobs)} ({' '.join(overrides)}): {exc}; nothing ran") from exc
    print(f"multirun: {len(jobs)} jobs, all valid", flush=True)
    lines, worst = [], EXIT_OK
    for number, (overrides, job) in enumerate(zip(jobs, settings, strict=True), start=1):
        print(f"\n[{number}/{len(jobs)}] {' '.join(overrides)}", flush=True)
        try:
            result = run_search(job, not args.no_progress) if args.command == "run" else run_solve(job)
            lines.append(f"[{number}/{len(jobs)}] ok      {' '.join(overrides)}  summary: {result.summary_path}")
        except Exception as exc:  # noqa: BLE001 - one job failing does not stop the others
            code = _exit_code(exc)
            if code is None:
                raise
            worst = max(worst, code)
            lines.append(f"[{number}/{len(jobs)}] failed  {' '.join(overrides)}  ({exc})")
    print("\nmultirun:\n" + "\n".join(lines))
    return worst


def _config_show(overrides: list[str], source) -> int:
    from blocknas.orchestrator.config import load_settings

    settings = load_settings(overrides, source)  # also loads the data and checks it against the space
    print(settings.config_yaml, end="")
    print(
        f"# valid; config_hash {settings.config_hash}; space {settings.space.name}: {len(settings.space.slots)} "
        f"slots, {settings.space.num_networks} networks"
    )
    return EXIT_OK


def _export_library(settings, path: Path, force: bool) -> int:
    from blocknas.orchestrator.jobs.llm_export import export_library
    from blocknas.orchestrator.output_files import check_new_file, write_atomically

    check_new_file(path, force, "export-library")
    library = export_library(settings)
    write_atomically(path, json.dumps(library, indent=1) + "\n")
    variants = sum(len(v) for v in library.values())
    print(
        f"wrote {path}: {len(library)} layers, {variants} variants (Puzzle's block-library format); "
        f"`blocknas targets add NAME --file {path}` reads it back"
    )
    return EXIT_OK


def _export_child(settings, directory: Path, global_steps: int, show_progress: bool, format: str) -> int:
    from blocknas.orchestrator.jobs.llm_export import export_child

    child = export_child(settings, directory, global_steps, show_progress, format)
    costs = ", ".join(f"{name} {value:.6g}" for name, value in child["costs"].items())
    loader = (
        "transformers.AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True) or vLLM"
        if format == "hf"
        else "blocknas.workers.llm.decoder.load_decoder"
    )
    print(
        f"wrote {directory}: predicted KL {child['predicted_kl']:.6g} against the parent, {costs}; "
        f"load it with {loader}"
    )
    for note in child["notes"]:
        print(f"  note: {note}")
    for name, measured in child["verification"].items():
        print(
            f"  {name}: held-out KL {measured['kl_div']:.4f}, LM loss {measured['lm_loss']:.4f}, "
            f"{measured['params']} layer params, {measured['prefill_tokens_per_s']:.0f} prefill and "
            f"{measured['decode_tokens_per_s']:.1f} decode tokens/s; continues the prompt with "
            f"{measured['text'][:60]!r}"
        )
    return EXIT_OK


def _plugins() -> int:
    from blocknas.orchestrator.plugins import registries

    for registry in registries():
        print(
            f"{registry.kind.replace('_', ' ') + 's':<16} {', '.join(registry.names()):<40} "
            f"(entry points: {registry.group})"
        )
    print(
        "blocks also: skip, conv_k<K>, sep_k<K>, mbconv_k<K>_e<E>; every kind also by import path "
        "package.module:attribute"
    )
    return EXIT_OK


def _bench(args) -> int:
    from omegaconf import OmegaConf

    from blocknas.orchestrator.bench.nb201 import BenchSettings, format_report, run_nb201_bench
    from blocknas.orchestrator.config import compose_config

    cfg = OmegaConf.to_container(compose_config([f"+bench={args.benchmark}", *args.overrides]), resolve=True)
    settings = BenchSettings.from_dict(cfg["bench"], Path(cfg["paths"]["output_dir"]))
    report, path = run_nb201_bench(settings)
    print(format_report(report))
    print(f"summary: {path}")
    return EXIT_OK


def _names_an_experiment(overrides: list[str]) -> bool:
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    return any(k in ("experiment", "space") or k.startswith("space.") for k in keys)


def _targets(url: str, args, full) -> int:
    from blocknas.orchestrator.storage import PerformanceStore
    from blocknas.orchestrator.targets import registry

    if args.action != "list" and not args.name:
        raise registry.TargetRegistryError(f"`blocknas targets {args.action}` needs a target name")
    if args.action in ("add", "update") and not args.file:
        raise registry.TargetRegistryError(f"`blocknas targets {args.action} {args.name}` needs --file F")
    data = None
    if args.action in ("add", "update"):  # checked whole before the store is opened (or created)
        from blocknas.orchestrator.targets.budgets import parse_budgets

        budgets = parse_budgets(args.budget)
        data = registry.read(args.name, args.file, args.metric, args.objective, budgets, args.maximize)
        if data.costs and _names_an_experiment(args.overrides):  # checked against that experiment's space
            from blocknas.orchestrator.deploy.fronts import check_coverage

            space = full().space
            slots = tuple(s.name for s in space.slots)
            check_coverage(args.name, args.file, slots, tuple(s.choices for s in space.slots), data.costs)
    store = PerformanceStore(url)
    if args.action == "list":
        out = [registry.describe(e) for e in store.registered_targets()]
        text = "\n".join(
            f"{t['name']:<20} {t['kind']:<9} {t['version']}  {','.join(t['metrics']):<24} "
            f"{t['slots']} slots, {t['blocks']} blocks  (updated {t['updated_at']})"
            for t in out
        )
        text = text or "no hardware targets registered; `blocknas targets add NAME --file F` adds one"
    elif args.action == "show":
        out = registry.describe(registry.find(store, args.name, usable=False), full=True)
        text = "\n".join(f"{k}: {v}" for k, v in out.items() if k not in ("costs", "scores"))
    elif args.action == "remove":
        out = {"name": args.name, "removed_version": registry.remove(store, args.name)}
        text = f"removed {args.name} (version {out['removed_version']}; its versions stay for provenance)"
    else:
        out = registry.put(store, args.name, data, update=args.action == "update")
        verb = "added" if args.action == "add" else ("updated" if out["changed"] else "unchanged")
        text = (
            f"{verb} {args.name}: version {out['version']} ({out['kind']}, {', '.join(out['metrics'])}, "
            f"from {out['source']})"
        )
    print(json.dumps(out, indent=2) if args.json else text)
    return EXIT_OK


def _prepared(store, settings, full, name: str):
    """A registered target and what it is solved against: its own scores, or the experiment's table (from
    the experiment's read snapshot where it has one: no torch, data or plan)."""
    from blocknas.orchestrator import read_snapshot
    from blocknas.orchestrator.deploy.fronts import prepare
    from blocknas.orchestrator.targets import registry

    entry = registry.find(store, name)
    if entry.definition.get("scores"):
        return prepare(store, entry, settings)
    if entry.definition.get("costs") and (base := read_snapshot.accuracy_table(settings)) is not None:
        return base, entry
    base, entry = prepare(store, entry, full())
    read_snapshot.save_accuracy_table(full(), base)
    return base, entry


def _shown_front(store, settings, full, name: str):
    """A registered target's front, or else that of one of the experiment's own targets (the run's front);
    with what its answers need: the objective, and each cost's metric (a run's costs are keyed by target)."""
    from blocknas.orchestrator.answers import registered_objective, run_objective
    from blocknas.orchestrator.deploy.fronts import solve_target
    from blocknas.orchestrator.targets import registry

    try:
        base, entry = _prepared(store, settings, full, name)
    except registry.TargetNotFoundError:
        own = [t.name for t in settings.targets]
        if name not in own:
            raise registry.TargetRegistryError(
                f"no hardware target named {name!r}: not registered (`blocknas targets list` shows those) and "
                f"not one of experiment {settings.name!r}'s own targets ({', '.join(own) or 'none'})"
            ) from None
        from blocknas.orchestrator import read_snapshot

        solved = read_snapshot.run_front(store, settings, name)
        if solved is None:
            from blocknas.orchestrator.experiments import run_target_front

            solved, key, ranges = run_target_front(full(), name)
            read_snapshot.save_run_front(full(), name, key.ident, ranges)
        return (
            solved,
            run_objective(settings.space_definition.get("kind"), settings.scorer),
            {t.name: t.metric for t in settings.targets},
        )
    return solve_target(store, base, entry, settings.solver.max_points), registered_objective(entry.definition), {}


def _cost_text(cost: float) -> str:
    """14 characters: 4 decimals, or 6 significant digits for a cost too large for them (a sentinel 1e300)."""
    return f"{cost:>14.4f}" if abs(cost) < 1e9 else f"{cost:>14.6g}"


def _blocks_text(blocks: list[str]) -> str:
    """Block keys on one line (a Puzzle variant's tab-separated sub-blocks joined by single spaces)."""
    return "  ".join(" ".join(b.split()) for b in blocks)


def _fronts(settings, args, full) -> int:
    from blocknas.orchestrator.deploy import switching
    from blocknas.orchestrator.storage import PerformanceStore
    from blocknas.orchestrator.targets import registry

    store = PerformanceStore(settings.storage_url)
    if args.command == "pick":
        from blocknas.orchestrator.deploy.picking import format_pick, pick
        from blocknas.orchestrator.targets.budgets import parse_budgets

        budgets = parse_budgets(args.budget)
        base, entry = _prepared(store, settings, full, args.target)
        out = pick(base, entry, budgets, args.num_solutions, args.minimal_diversity, store, settings.solver.max_points)
        text = format_pick(out)
    elif args.command == "fronts":
        from blocknas.orchestrator.answers import front_cap, with_answers

        solved, objective, metrics = _shown_front(store, settings, full, args.target)
        front = solved.front
        out = {
            "target": front.target,
            "target_version": front.target_version,
            "experiment": front.experiment,
            "metric": front.metric,
            "computed_at": front.computed_at.isoformat(),
            "solved_now": solved.solved,
            "cap": front_cap(front.points, settings.solver.max_points),
            "points": with_answers(front.points, objective, metrics),
        }
        text = "\n".join(
            [
                f"{front.target} (version {front.target_version}) on {front.experiment}: "
                f"{len(front.points)} points, computed {out['computed_at']}",
                f"{front.metric:>14}  {objective.name[:10]:>10}  blocks",
            ]
            + [
                f"{_cost_text(p['cost'])}  {value:>10.4f}  {_blocks_text(p['blocks'])}"
                for p in front.points
                if (value := objective.value(p["predicted_accuracy"])) is not None
            ]
        )
    else:
        base, entry = _prepared(store, settings, full, args.target)
        if (args.measured is None) != (args.predicted is None):
            raise registry.TargetRegistryError("a correction needs both --measured and --predicted")
        result = (
            switching.correct(
                store, base, args.target, args.measured, args.predicted, args.budget, settings.solver.max_points
            )
            if args.measured is not None
            else switching.switch(store, base, args.target, args.budget, settings.solver.max_points, entry)
        )
        if result.point is None:
            from blocknas.solvers import InfeasibleBudgetError

            raise InfeasibleBudgetError(result.infeasible)
        from blocknas.orchestrator.answers import network_answer, registered_objective

        out = result.as_json() | {"answer": network_answer(result.point, registered_objective(entry.definition))}
        text = (
            f"{args.target} within {result.metric} <= {args.budget:g}: {_blocks_text(result.point['blocks'])} "
            f"(predicted {result.point['predicted_accuracy']:.4f}, "
            f"{result.metric} {_cost_text(result.point['cost']).strip()})"
        )
    print(json.dumps(out, indent=2, default=str) if args.json else text)
    return EXIT_OK


def _dashboard(settings, full, host: str, port: int) -> int:
    from blocknas.dashboards.app import serve
    from blocknas.orchestrator.settings import ConfigError

    if not 0 < port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {port}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"blocknas: warning: the dashboard binds {host}: anyone who reaches this machine can read the "
            "performance table (it has no login); keep it on 127.0.0.1 and tunnel (ssh -L) instead",
            file=sys.stderr,
            flush=True,
        )
    serve(settings, full, host, port)
    return EXIT_OK


def _scheduler(settings) -> int:
    from blocknas.orchestrator.deploy.scheduler import serve

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger = logging.getLogger("blocknas.scheduler")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    serve(settings, settings.scheduler)
    return EXIT_OK


def _db(url: str, action: str) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from blocknas.orchestrator.storage import PerformanceStore, StorageError, public_url
    from blocknas.orchestrator.storage._schema import SchemaError, current_revision, head_revision, upgrade

    engine = PerformanceStore(url, create=False).engine
    try:
        if action == "current":
            revision = current_revision(engine)
            state = "up to date" if revision == head_revision() else f"needs `blocknas db upgrade` to {head_revision()}"
            print(f"{public_url(url)}: schema revision {revision or 'none (empty store)'}, {state}")
            return EXIT_OK
        before, after = upgrade(engine)
    except (SchemaError, SQLAlchemyError) as exc:
        raise StorageError(f"{public_url(url)}: {exc}") from exc
    finally:
        engine.dispose()
    print(
        f"{public_url(url)}: schema revision {before or 'none'} -> {after}"
        if before != after
        else f"{public_url(url)}: already at schema revision {after}"
    )
    return EXIT_OK


def _blocks(settings, args) -> int:
    from blocknas.orchestrator.pipeline.block_views import base_deltas, format_blocks
    from blocknas.orchestrator.storage import PerformanceStore

    store = PerformanceStore(settings.storage_url)
    experiment = None if args.all else (args.experiment or settings.name)
    if experiment is not None and not store.block_scores(experiment=experiment):
        from blocknas.orchestrator.settings import ConfigError
        from blocknas.workers.registry import did_you_mean

        names = sorted({e["name"] for e in store.experiments()})
        if experiment not in names:
            raise ConfigError(
                f"no experiment named {experiment!r} in the store{did_you_mean(experiment, names)}; it holds "
                f"{', '.join(names) or 'none yet'} (--all lists every experiment's blocks)"
            )
    scores = store.block_scores(experiment=experiment, status=args.status)
    deltas = base_deltas(store.block_scores(experiment=experiment))
    if args.json:
        print(json.dumps([s.as_json() | {"accuracy_delta": deltas.get(s.job_hash)} for s in scores], indent=2))
    else:
        from blocknas.orchestrator.answers import ACCURACY, run_objective

        objective = ACCURACY if args.all else run_objective(settings.space_definition.get("kind"), settings.scorer)
        print(format_blocks(scores, deltas, objective))
        print(f"{len(scores)} block results in {store.url.split('://')[0]} store")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
