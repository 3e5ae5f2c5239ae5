"""The documentation: the MkDocs site builds with --strict (a broken link or anchor fails), the README stays
short, and every page it links to exists."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"


def test_the_site_builds_strictly_with_the_generated_references(tmp_path):
    result = subprocess.run(
        [MKDOCS, "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cli = (tmp_path / "cli" / "index.html").read_text()
    assert "blocknas pick" in cli and "--num-solutions" in cli  # generated from the parser
    api = (tmp_path / "api" / "index.html").read_text()
    import blocknas

    assert all(f">{name}<" in api or f"<code>{name}</code>" in api for name in blocknas.__all__)


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert text.startswith("# blocknas\n\n```bash\nmake demo") and "\nmake test " in text
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_the_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
