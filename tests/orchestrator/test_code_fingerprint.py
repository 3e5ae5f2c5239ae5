"""A user's code in the hash of its results: which files identify an extension, and how a change is named."""

import importlib
import sys

from blocknas.orchestrator.code_fingerprint import changed_parts, code_identity
from blocknas.workers.scoring import SCORERS


def test_a_users_package_is_identified_by_every_source_file_and_blocknas_by_nothing(tmp_path, monkeypatch):
    package = tmp_path / "my_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("RATE = 0.1\n")
    (package / "scoring.py").write_text(
        "from my_project.helpers import RATE\n\ndef score(m, d, s, x):\n    return {}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    score = importlib.import_module("my_project.scoring").score
    try:
        identity = code_identity(score)
        assert identity["module"] == "my_project.scoring"
        assert set(identity["files"]) == {"my_project/__init__.py", "my_project/helpers.py", "my_project/scoring.py"}
        (package / "helpers.py").write_text("RATE = 0.01\n")  # a helper the scorer imports, not the scorer
        assert changed_parts({"scorer": identity}, {"scorer": code_identity(score)}) == ["my_project/helpers.py"]
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "my_project"]:
            del sys.modules[name]
    assert code_identity(SCORERS.get("swap_in").evaluate) is None  # blocknas's own: versioned with it
    assert code_identity(len) is None and code_identity(importlib.import_module) is None


def test_a_plugins_new_version_and_a_part_that_came_are_named():
    before = {"data": {"module": "d", "distribution": "plug==1.0", "files": {"d.py": "a"}}}
    now = {
        "data": {"module": "d", "distribution": "plug==1.1", "files": {"d.py": "a"}},
        "scorer": {"module": "s", "files": {"s.py": "b"}},
    }
    assert changed_parts(before, now) == ["plug==1.1", "s.py"]
    renamed = {"data": {**now["data"], "module": "d2"}}  # another function of the same files
    assert changed_parts({"data": now["data"]}, renamed) == ["the data's module (d2)"]
    assert changed_parts(now, now) == []
