"""The layout's rules, enforced: import-linter contracts (pyproject.toml), every package shipped, no `conf` claimed."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def test_the_dependency_contracts_hold():
    result = subprocess.run([LINT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 kept, 0 broken" in result.stdout


def test_a_broken_contract_is_reported(tmp_path):
    """The checker really follows imports: workers import numpy, so forbidding it must fail."""
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["workers"]\ninclude_external_packages = true\n\n'
                      '[[tool.importlinter.contracts]]\nname = "no numpy"\ntype = "forbidden"\n'
                      'source_modules = ["workers"]\nforbidden_modules = ["numpy"]\n')
    result = subprocess.run([LINT, "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "no numpy BROKEN" in result.stdout


def test_every_package_is_shipped_and_the_configs_do_not_claim_conf(tmp_path):
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for root in ("orchestrator", "workers", "solvers", "dashboards")
             for p in (ROOT / root).rglob("__init__.py")}
    assert found | {"blocknas_conf"} == listed
    probe = "import blocknas_conf, importlib.util as u; print(u.find_spec('conf'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "None", result.stderr
