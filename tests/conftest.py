"""Shared fixtures: an isolated BLOCKNAS_HOME per test, the CLI in a real subprocess, store backends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

POSTGRES_ENV = "BLOCKNAS_TEST_POSTGRES_URL"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty project directory: the store, MLflow and outputs of the test go here."""
    monkeypatch.setenv("BLOCKNAS_HOME", str(tmp_path))
    return tmp_path


def run_cli(home: Path, *args: str, timeout: int = 600, subprocess_: bool = False) -> subprocess.CompletedProcess:
    """``blocknas ARGS`` with its own BLOCKNAS_HOME and working directory, as a user would run it.

    In this process (the CLI's ``main``, its output captured, an escaping exception printed as the traceback
    a user would see, exit 1): no interpreter start-up and imports per call. ``subprocess_=True`` where the
    test needs a process of its own (signals, kills, a cluster's environment)."""
    if subprocess_:
        env = {**os.environ, "BLOCKNAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        return subprocess.run(
            [sys.executable, "-m", "blocknas.orchestrator.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=home,
        )
    import io
    import traceback

    from blocknas.orchestrator import cli

    out, err = io.StringIO(), io.StringIO()
    previous_cwd, previous_home, previous_path = os.getcwd(), os.environ.get("BLOCKNAS_HOME"), list(sys.path)
    os.environ["BLOCKNAS_HOME"] = str(home)
    os.chdir(home)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception:  # noqa: BLE001 - what a user would see: the traceback, exit 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous_cwd)
        sys.path[:] = previous_path
        if previous_home is None:
            os.environ.pop("BLOCKNAS_HOME", None)
        else:
            os.environ["BLOCKNAS_HOME"] = previous_home
    return subprocess.CompletedProcess(["blocknas", *args], code, out.getvalue(), err.getvalue())


def start_cli(home: Path, *args: str) -> subprocess.Popen:
    """``blocknas ARGS`` started in the background, in a session of its own (see ``kill_session``)."""
    env = {**os.environ, "BLOCKNAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "blocknas.orchestrator.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=home,
        start_new_session=True,
    )


def session_pids(leader: int) -> list[int]:
    """Every process of ``leader``'s session (see ``start_cli``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getsid(int(entry.name)) == leader:
                    pids.append(int(entry.name))
    return pids


def kill_session(leader: int) -> None:
    """SIGKILL every process of ``leader``'s session: a driver and the local Ray instance it started."""
    for pid in session_pids(leader):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def stop_session(proc: subprocess.Popen, grace: float = 60) -> None:
    """SIGTERM ``proc``'s session, give it ``grace`` s to exit, then SIGKILL what is left; returns only once
    ``proc`` has exited, so that a teardown never leaves a process behind on a busy machine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    kill_session(proc.pid)
    proc.wait(30)


def listening_sockets(pids: list[int]) -> list[tuple[str, int, str]]:
    """(address, port, command) of every TCP socket in LISTEN state held by ``pids``, from /proc."""
    listening = {}  # socket inode -> (address, port)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    address, port = fields[1].split(":")
                    listening[fields[9]] = (_proc_net_address(address), int(port, 16))
    found = []
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            command = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(FileNotFoundError, OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in listening:
                        found.append((*listening[link[8:-1]], command))
    return sorted(set(found))


def _proc_net_address(hex_address: str) -> str:
    """/proc/net/tcp{,6} write addresses as 32-bit words in host (little-endian) byte order."""
    import ipaddress

    raw = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8))
    address = ipaddress.ip_address(raw)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None, interval: float = 0.2):
    """Poll ``condition()`` until it returns something truthy; fail naming ``what`` after ``timeout`` s,
    or as soon as ``proc`` (the process expected to make it true) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{proc.args} exited ({proc.returncode}) before {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def summary_of(result: subprocess.CompletedProcess) -> dict:
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("summary: "), result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(Path(last.removeprefix("summary: ")).read_text())


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV)


@contextlib.contextmanager
def postgres_schema(url: str):
    """A fresh schema on the PostgreSQL server at ``url`` (its name, and an engine on the server), dropped
    afterwards; skips the test, saying why, when no server answers there."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server reachable at {url}: {exc}")
    try:
        yield schema, admin
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty performance store on each backend (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/perf.db"
        return
    url = postgres_url()
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set; .ci/run sets it to the local PostgreSQL server")
    with postgres_schema(url) as (schema, _):
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"


# A user's own space on flat inputs (tabular features): a linear stem, two slots of linear blocks, 3 classes.
FLAT_SPACE = """\
from torch import nn

from blocknas import TorchSlot, TorchSpace


def make_space():
    blocks = {{"skip": nn.Identity, "wide": lambda: nn.Sequential(nn.Linear(16, 16), nn.ReLU())}}
    return TorchSpace(
        name="flat",
        input_shape=({features},),
        num_classes=3,
        stem=lambda: nn.Linear({features}, 16),
        slots=[TorchSlot(f"s{{i}}", blocks) for i in range(2)],
        head=lambda: nn.Linear(16, 3),
    )
"""
