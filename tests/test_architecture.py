"""The layout's rules, enforced on the wheel the project builds: one top-level import package, `blocknas`;
import-linter's contracts (pyproject.toml) on the modules it ships; every package listed; no `conf` claimed."""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a copy of the sources (the checkout stays clean) and unpacked."""
    where = tmp_path_factory.mktemp("wheel")
    source = where / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "__pycache__", ".blocknas", "outputs", "mlruns", "docs", "site"
        ),
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(where / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (where / "dist").glob("blocknas-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(where / "site")
    return where / "site"


def test_the_wheel_installs_exactly_one_import_package(unpacked_wheel):
    top_level = {p.name for p in unpacked_wheel.iterdir() if not p.name.endswith(".dist-info")}
    assert top_level == {"blocknas"}
    shipped = unpacked_wheel / "blocknas"
    assert (shipped / "conf" / "config.yaml").is_file() and (shipped / "orchestrator" / "cli.py").is_file()
    assert (shipped / "orchestrator" / "storage" / "migrations" / "script.py.mako").is_file()
    (dist_info,) = unpacked_wheel.glob("blocknas-*.dist-info")
    assert "blocknas = blocknas.orchestrator.cli:main" in (dist_info / "entry_points.txt").read_text()


def test_the_dependency_contracts_hold(unpacked_wheel):
    """Checked on the shipped layout (grimp walks folders, and ours are mapped into ``blocknas`` by
    package-dir): run from the unpacked wheel, the contracts see exactly the modules a user installs."""
    result = subprocess.run(
        [LINT, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=unpacked_wheel,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "7 kept, 0 broken" in result.stdout


def test_a_broken_contract_is_reported(tmp_path, unpacked_wheel):
    """The checker really follows imports: workers import numpy, so forbidding it must fail."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["blocknas"]\ninclude_external_packages = true\n\n'
        '[[tool.importlinter.contracts]]\nname = "no numpy"\ntype = "forbidden"\n'
        'source_modules = ["blocknas.workers"]\nforbidden_modules = ["numpy"]\n'
    )
    result = subprocess.run(
        [LINT, "--config", str(config), "--no-cache"], cwd=unpacked_wheel, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1 and "no numpy BROKEN" in result.stdout


def test_every_package_is_shipped_and_the_configs_do_not_claim_conf(tmp_path):
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(("blocknas", *p.parent.relative_to(ROOT).parts))
        for root in ("orchestrator", "workers", "solvers", "dashboards")
        for p in (ROOT / root).rglob("__init__.py")
    }
    assert found | {"blocknas", "blocknas.conf"} == listed
    probe = "import blocknas.conf, importlib.util as u; print(u.find_spec('conf'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "None", result.stderr


SOURCES = ("blocknas", "orchestrator", "workers", "solvers", "dashboards", "tests", "benchmarks", "examples", "docs")


def _tool(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


@pytest.mark.slow  # mypy from a cold cache: half a minute (make lint runs it alone)
def test_the_pure_packages_type_check(unpacked_wheel):
    """mypy on blocknas.solvers and blocknas.workers as they ship (their imports of each other resolved)."""
    result = subprocess.run(
        [
            _tool("mypy"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-incremental",
            "-p",
            "blocknas.solvers",
            "-p",
            "blocknas.workers",
        ],
        cwd=unpacked_wheel,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and "Success: no issues found" in result.stdout, result.stdout[-4000:]


def test_the_sources_pass_ruff_lint_and_format():
    """ruff's rules (pyproject.toml; McCabe complexity at most 15 per function) and its formatting."""
    lint = subprocess.run([_tool("ruff"), "check", *SOURCES], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout[-4000:]
    form = subprocess.run(
        [_tool("ruff"), "format", "--check", *SOURCES], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert form.returncode == 0, form.stdout[-4000:]


def test_no_module_of_the_product_imports_itself_back(unpacked_wheel, monkeypatch):
    """No import cycle between blocknas's modules (imports for type checkers only aside: they never run). Each
    direct import A -> B is checked for a chain B -> ... -> A (grimp, import-linter's graph)."""
    import grimp

    monkeypatch.syspath_prepend(str(unpacked_wheel))
    for name in [m for m in sys.modules if m == "blocknas" or m.startswith("blocknas.")]:
        monkeypatch.delitem(sys.modules, name)  # grimp finds the package where Python would: the wheel's
    graph = grimp.build_graph("blocknas", exclude_type_checking_imports=True, cache_dir=None)
    cycles = []
    for module in sorted(m for m in graph.modules if m.startswith("blocknas.")):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("blocknas.") and (back := graph.find_shortest_chain(imported, module)):
                cycles.append(" -> ".join((module, *back)))
    assert cycles == []
