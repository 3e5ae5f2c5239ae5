"""MLflow adapter: one parent run per ``blocknas run``, one nested run per block job.

Tracking is best effort: where the driver could not open its runs (``open_parent_run`` returns ``None``
ids), every call below with a ``None`` experiment or run id does nothing, so results are stored as usual.

Every call is bounded in time: a tracking server must answer each request within ``REQUEST_TIMEOUT_S``
(MLflow's own default is 120 s, retried 7 times), the first one is a probe of that long, and a server that
stops answering mid-run turns tracking off in that process (``TrackingOffError``) after one such wait.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

from filelock import FileLock
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 5
# Read by MLflow's REST client at each request; inherited by the Ray workers. A user's own setting wins.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(REQUEST_TIMEOUT_S))
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")

PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND, TRAINING = "mlflow.experimentKind", "custom_model_development"
SHARED_VIEW = "mlflow.sharedViewState."  # an experiment tag the UI's runs table opens as a saved view
UI_PORT = 5000


class TrackingOffError(RuntimeError):
    """The tracking server stopped answering earlier in this process: tracking is off."""


_off: set[str] = set()  # tracking URIs whose server stopped answering


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the server did not answer: a timeout or a refused
    connection, as opposed to an error the server answered with."""
    import requests

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(
            exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout | TimeoutError | ConnectionError
        ) or any(m in str(exc) for m in ("timed out", "Max retries exceeded")):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class _BoundedClient:
    """An ``MlflowClient`` whose calls fail at once (``TrackingOffError``) once its server stopped answering."""

    def __init__(self, uri: str):
        self._uri, self._client = uri, MlflowClient(tracking_uri=uri)

    def __getattr__(self, name: str):
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args, **kwargs):
            if self._uri in _off:
                raise TrackingOffError(f"the MLflow server at {self._uri} stopped answering; tracking is off")
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                if _unreachable(exc) and self._uri not in _off:
                    _off.add(self._uri)
                    warn(
                        f"the MLflow server at {self._uri} did not answer within {REQUEST_TIMEOUT_S} s; tracking "
                        "is off for the rest of this run (results are stored as usual)"
                    )
                raise

        return call


@lru_cache(maxsize=4)
def client_for(uri: str) -> MlflowClient:
    return _BoundedClient(uri)  # type: ignore[return-value] - an MlflowClient's methods, bounded


def prepare_experiment(uri: str, name: str, artifact_location: str) -> str:
    """Create (once, from the driver) the tracking store and the experiment; return its id.

    A fresh SQLite MLflow store is created by its first client: doing it here, before any Ray task
    starts, avoids many processes racing to create the same database.
    """
    _probe(uri)
    # Two drivers starting at once on a new SQLite store would both run MLflow's schema migrations.
    lock = FileLock(f"{uri.removeprefix('sqlite:///')}.lock") if uri.startswith("sqlite:///") else nullcontext()
    with lock:
        client = client_for(uri)
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if EXPERIMENT_KIND not in experiment.tags:  # created before blocknas set it
                client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, TRAINING)
            return experiment.experiment_id
        # A tracking server stores artifacts where its --artifacts-destination says, reachable from every node.
        remote = uri.startswith(("http://", "https://"))
        location = Path(artifact_location).resolve().as_uri() if artifact_location and not remote else None
        try:
            # the kind a UI without the GenAI/model-training switch opens on (3.17 needs runs_page's parameter)
            return client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND: TRAINING})
        except Exception:  # another driver (on a server store) created it at the same moment
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id


def _probe(uri: str, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
    """Fail within ``timeout_s`` when a tracking server does not answer an HTTP request (its ``/health``),
    instead of MLflow's minutes of retries: a closed port, and a socket that accepts and never answers."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    where = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s).close()  # noqa: S310 - http(s) only
    except urllib.error.HTTPError:
        return  # it answered (an older server without /health, or behind an auth proxy)
    except (OSError, ValueError) as exc:  # URLError, refused, timed out
        reason = getattr(exc, "reason", None) or exc
        raise ConnectionError(f"no MLflow server answers at {where} within {timeout_s:g} s: {reason}") from None


def open_parent_run(
    uri: str, name: str, artifact_location: str, run_name: str, tags: dict, params: dict
) -> tuple[str | None, str | None]:
    """(experiment id, run id) of a new parent run; ``(None, None)`` with a warning when tracking fails.

    The run carries its driver (``blocknas.driver``: host, pid, process start time), so that the next run
    on the host closes it as FAILED if the driver died with it open (SIGKILL, a full disk)."""
    try:
        experiment_id = prepare_experiment(uri, name, artifact_location)
        best_effort("close the runs of dead drivers", close_runs_of_dead_drivers, uri, experiment_id)
        return experiment_id, start_run(uri, experiment_id, run_name, {**tags, DRIVER_TAG: this_driver()}, params)
    except Exception as exc:  # noqa: BLE001 - any tracking failure: the run goes on untracked
        warn(
            f"MLflow tracking is off for this run ({type(exc).__name__}: {str(exc)[:300]}); results are "
            "stored in the performance table as usual"
        )
        return None, None


DRIVER_TAG = "blocknas.driver"


def this_driver() -> str:
    import psutil

    return f"{socket.gethostname()}:{os.getpid()}:{psutil.Process().create_time():.3f}"


def _driver_alive(driver: str) -> bool:
    """Whether the driver a run names still runs; a driver on another host is taken to (it cannot be seen)."""
    import psutil

    parts = driver.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return True
    try:
        return f"{psutil.Process(int(parts[1])).create_time():.3f}" == parts[2]
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def close_runs_of_dead_drivers(uri: str, experiment_id: str) -> int:
    """Close as FAILED every RUNNING run of ``experiment_id`` whose driver (on this host) is gone, and the
    RUNNING block runs under it; returns how many runs were closed."""
    client = client_for(uri)
    closed = 0
    for run in client.search_runs([experiment_id], f"attributes.status = 'RUNNING' and tags.`{DRIVER_TAG}` != ''"):
        driver = run.data.tags[DRIVER_TAG]
        if _driver_alive(driver):
            continue
        message = f"its driver ({driver}) died before closing it"
        closed += close_children(uri, experiment_id, run.info.run_id, "FAILED", message)
        client.set_tag(run.info.run_id, "blocknas.error", message)
        client.set_terminated(run.info.run_id, status="FAILED")
        closed += 1
    return closed


def close_children(uri: str, experiment_id: str | None, parent_run_id: str | None, status: str, reason: str) -> int:
    """Close the RUNNING runs under ``parent_run_id`` (block runs in flight) with ``status``."""
    if experiment_id is None or parent_run_id is None:
        return 0
    client = client_for(uri)
    runs = client.search_runs(
        [experiment_id], f"attributes.status = 'RUNNING' and tags.`{PARENT_TAG}` = '{parent_run_id}'"
    )
    for run in runs:
        client.set_tag(run.info.run_id, "blocknas.error", reason)
        client.set_terminated(run.info.run_id, status=status)
    return len(runs)


def warn(message: str) -> None:
    print(f"blocknas: warning: {message}", file=sys.stderr, flush=True)


def best_effort(what: str, call, *args, **kwargs) -> None:
    """Run a tracking call; a failure is a warning (once, where tracking turned off), never the run's end."""
    try:
        call(*args, **kwargs)
    except TrackingOffError:
        pass
    except Exception as exc:  # noqa: BLE001
        if not _unreachable(exc):
            warn(f"MLflow: could not {what} ({type(exc).__name__}: {str(exc)[:300]})")


def start_run(
    uri: str, experiment_id: str | None, run_name: str, tags: dict, params: dict, parent_run_id: str | None = None
) -> str | None:
    if experiment_id is None:
        return None
    client = client_for(uri)
    all_tags = dict(tags)
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    run = client.create_run(experiment_id, run_name=run_name, tags={k: str(v) for k, v in all_tags.items()})
    if params:
        client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    return run.info.run_id


def log_metrics(uri: str, run_id: str | None, metrics: dict, tags: dict | None = None) -> None:
    if run_id is None:
        return
    now = int(time.time() * 1000)
    client_for(uri).log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
        tags=[RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()],
    )


def log_curve(uri: str, run_id: str | None, curve: dict) -> None:
    """A training curve, ``{metric: [(step, value), ...]}``, as metric histories (``curve/<metric>``) that
    the MLflow UI draws against the step."""
    if run_id is None:
        return
    now = int(time.time() * 1000)
    metrics = [
        Metric(f"curve/{name}", float(v), now, int(step)) for name, points in curve.items() for step, v in points
    ]
    for start in range(0, len(metrics), 1000):  # MLflow's log_batch limit
        client_for(uri).log_batch(run_id, metrics=metrics[start : start + 1000])


def finish_run(
    uri: str, run_id: str | None, metrics: dict | None = None, status: str = "FINISHED", tags: dict | None = None
) -> None:
    if run_id is None:
        return
    if metrics or tags:
        log_metrics(uri, run_id, metrics or {}, tags)
    client_for(uri).set_terminated(run_id, status=status)


def log_dict(uri: str, run_id: str | None, data: dict, artifact_file: str) -> None:
    if run_id is None:
        return
    client_for(uri).log_dict(run_id, data, artifact_file)


def log_artifacts(uri: str, run_id: str | None, paths: list[Path]) -> None:
    if run_id is None:
        return
    client = client_for(uri)
    for path in paths:
        client.log_artifact(run_id, str(path))


def runs_with_metric(uri: str, experiment_id: str, run_ids: list[str], metric: str) -> set[str]:
    """Those of ``run_ids`` that have logged ``metric``."""
    found = set()
    for start in range(0, len(run_ids), 100):
        chunk = run_ids[start : start + 100]
        query = "attributes.run_id IN (" + ", ".join(f"'{r}'" for r in chunk) + ")"
        found |= {
            r.info.run_id
            for r in client_for(uri).search_runs([experiment_id], query, max_results=len(chunk))
            if metric in r.data.metrics
        }
    return found


def runs_page(experiment_id: str, **params: str) -> str:
    """The UI's runs table of an experiment, as a URL path. The UI remembers one global mode (GenAI or model
    training) and opens every experiment in it, GenAI by default: the path asks for model training."""
    return f"/#/experiments/{experiment_id}/runs?{urlencode(params | {'workflowType': 'machine_learning'})}"


def ui_url(uri: str, path: str) -> str:
    """``path`` on the MLflow UI of this store: the tracking server's, or ``ui_command``'s."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{UI_PORT}"
    return base + path


def ui_command(uri: str) -> str:
    """The command that opens the MLflow UI on this store, bound to localhost."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port {UI_PORT}"
