"""The KubeRay manifests in docker/kubernetes, validated offline: Kubernetes' own kinds with
`kubernetes-validate`, RayCluster and RayJob against KubeRay's CRD schemas (../shared/data/kuberay, read in
place), no secret inline, and every blocknas command in them accepted by blocknas's own CLI."""

from __future__ import annotations

import functools
import os
import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from blocknas.orchestrator.cli import _parser
from blocknas.orchestrator.config import ConfigSource, load_settings

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "docker" / "kubernetes").glob("*.yaml"))
CRDS = Path(os.environ.get("BLOCKNAS_KUBERAY_CRDS", ROOT.parent / "shared" / "data" / "kuberay"))
KUBERNETES = "1.33.0"


def _documents() -> list[tuple[str, dict]]:
    return [
        (f"{path.name}: {doc['kind']} {doc['metadata']['name']}", doc)
        for path in MANIFESTS
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


DOCUMENTS = _documents()


def _crd_schema(doc: dict) -> dict:
    group, version = doc["apiVersion"].split("/")
    path = CRDS / f"{group}_{doc['kind'].lower()}s.yaml"
    if not path.exists():
        pytest.skip(
            f"no KubeRay CRD at {path} (../shared/data/kuberay is not beside this checkout; "
            "or set BLOCKNAS_KUBERAY_CRDS)"
        )
    return _crd_version(path, version)


@functools.lru_cache
def _crd_version(path: Path, version: str) -> dict:
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (schema,) = [v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version]
    return schema


def unknown_fields(value, schema: dict, where: str = "") -> list[str]:
    """Fields the API server would prune without a word (a CRD schema allows them, Kubernetes drops them):
    a typo such as `workerGroupSpec` silently loses the whole worker group."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += unknown_fields(item, schema["properties"][key], f"{where}.{key}")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            found += unknown_fields(item, schema["additionalProperties"], f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{where}[{i}]")
    return found


def _pod_specs(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    if doc["kind"] == "RayCluster":
        return [spec["headGroupSpec"]["template"]["spec"], *(g["template"]["spec"] for g in spec["workerGroupSpecs"])]
    if "template" in spec:
        return [spec["template"]["spec"]]
    return []


def test_every_manifest_is_found():
    kinds = {doc["kind"] for _, doc in DOCUMENTS}
    assert {"RayCluster", "RayJob", "Deployment", "StatefulSet", "Service", "ConfigMap"} <= kinds, kinds


def _cases(kuberay: bool) -> list:
    return [pytest.param(doc, id=name) for name, doc in DOCUMENTS if doc["apiVersion"].startswith("ray.io/") == kuberay]


@pytest.mark.parametrize("doc", _cases(kuberay=False))
def test_kubernetes_kinds_validate_strictly(doc):
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises ValidationError, naming the field


@pytest.mark.parametrize("doc", _cases(kuberay=True))
def test_kuberay_resources_validate_against_the_crds(doc):
    schema = _crd_schema(doc)
    jsonschema.Draft7Validator(schema).validate(doc)
    assert unknown_fields(doc, schema) == []
    for pod in _pod_specs(doc):  # the pod templates inside, as Kubernetes validates them
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod}, KUBERNETES, strict=True
        )


def test_the_crd_check_catches_a_misspelt_field():
    ((_, cluster),) = [d for d in DOCUMENTS if d[1]["kind"] == "RayCluster"]
    schema = _crd_schema(cluster)
    typo = {**cluster, "spec": {**cluster["spec"], "workerGroupSpec": cluster["spec"]["workerGroupSpecs"]}}
    del typo["spec"]["workerGroupSpecs"]
    assert unknown_fields(typo, schema) == [".spec.workerGroupSpec"]
    wrong_type = {**cluster, "spec": {**cluster["spec"], "enableInTreeAutoscaling": "yes"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(wrong_type)


def test_no_secret_is_inline():
    for name, doc in DOCUMENTS:
        assert doc["kind"] != "Secret", f"{name}: create Secrets with kubectl, never in a file"
        for pod in _pod_specs(doc):
            for container in pod["containers"]:
                for env in container.get("env", []):
                    if any(word in env["name"].upper() for word in ("PASSWORD", "TOKEN", "SECRET")):
                        assert "secretKeyRef" in env.get("valueFrom", {}), f"{name}: {env['name']} inline"


def _blocknas_commands() -> list[list[str]]:
    commands = []
    for _, doc in DOCUMENTS:
        if doc["kind"] == "RayJob":
            commands.append(shlex.split(doc["spec"]["entrypoint"]))
        for pod in _pod_specs(doc):
            commands += [
                c["command"] + c.get("args", []) for c in pod["containers"] if c.get("command", [""])[0] == "blocknas"
            ]
    return commands


def test_every_blocknas_command_parses_with_the_cli_and_reaches_the_cluster_services(monkeypatch):
    (config,) = [doc for _, doc in DOCUMENTS if doc["kind"] == "ConfigMap"]
    for key, value in config["data"].items():
        monkeypatch.setenv(key, value)
    commands = _blocknas_commands()
    assert {c[1] for c in commands} == {"run", "scheduler"}, commands
    for command in commands:
        args, extra = _parser().parse_known_args(command[1:])
        assert not [a for a in extra if a.startswith("-")], command
        settings = load_settings(
            args.overrides + extra, ConfigSource(args.config_dir, args.config_name), check_space=False
        )
        assert settings.storage_url == "postgresql+psycopg://blocknas@blocknas-postgres:5432/blocknas", command
        assert settings.tracking.uri == config["data"]["MLFLOW_TRACKING_URI"], command
