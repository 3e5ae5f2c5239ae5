"""The machine a measurement ran on: what measured latencies depend on (imports no torch)."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

LABEL_ENV = "BLOCKNAS_MACHINE_LABEL"  # an operator's name for a node (an asset tag, a power mode)


def machine_fingerprint() -> dict:
    """This machine's host name, CPU model and torch version, and its label when one is set."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        torch_version = version("torch").split("+")[0]
    except PackageNotFoundError:
        torch_version = "none"
    fingerprint = {"host": platform.node(), "cpu": cpu, "torch": torch_version}
    if os.environ.get(LABEL_ENV):
        fingerprint["label"] = os.environ[LABEL_ENV]
    return fingerprint


def machine_label(fingerprint: dict) -> str:
    """One line for the performance table's ``measured_on`` column."""
    name = f"{fingerprint['label']} ({fingerprint['host']})" if fingerprint.get("label") else fingerprint["host"]
    gpu = f", GPU {fingerprint['gpu']}" if fingerprint.get("gpu") else ""
    return f"{name}: {fingerprint['cpu']}{gpu}, torch {fingerprint['torch']}"[:200]
