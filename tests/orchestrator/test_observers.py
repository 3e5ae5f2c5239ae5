"""The observer's hooks, called directly: MLflow records a run, its blocks (finished and failed), its fronts
and its end; a run whose MLflow does not answer gets the no-op observer and goes on."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from blocknas.orchestrator.observers import MlflowObserver, NoObserver
from blocknas.orchestrator.planning import BlockJob
from blocknas.workers.records import NetworkJob, NetworkResult

BLOCK = BlockJob("h1", 0, "s0", "conv_k3", 1, "s0:conv_k3", "n1")
JOB = NetworkJob("n1", {"kind": "cnn"}, ("conv_k3", "skip"), {})
RESULT = NetworkResult(91.5, 0.3, 0.2, 1.5, 1000, 20000, "cpu", {"train_loss": [(1, 2.0), (2, 1.0)]})


def test_every_hook_records_what_it_names_in_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    observer = MlflowObserver(uri, "exp", scorer_params=(("scorer.steps", 80),))
    run = observer.run_start("run", {"blocknas.config_hash": "abc"}, {"space": "smoke"})
    assert isinstance(run, MlflowObserver) and run.run_id and run.experiment_id
    done, failed, lost = (run.block_start(BLOCK, JOB, "node-1", attempt) for attempt in (1, 2, 3))
    run.block_complete(done, RESULT)
    run.block_error(failed, "Traceback: boom")
    summary = tmp_path / "summary.json"
    summary.write_text("{}")
    run.front([summary], {"front_points.flops": 4})
    run.run_end("KILLED", "stopped by a test")

    client = MlflowClient(uri)
    parent = client.get_run(run.run_id)
    assert parent.info.status == "KILLED" and parent.data.tags["blocknas.kind"] == "run"
    assert parent.data.params["space"] == "smoke" and parent.data.metrics["front_points.flops"] == 4
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["summary.json"]
    block = client.get_run(done)
    assert block.info.status == "FINISHED" and block.data.metrics["accuracy"] == 91.5
    assert block.data.params["scorer.steps"] == "80" and block.data.tags["blocknas.search"] == run.run_id
    assert [m.value for m in client.get_metric_history(done, "curve/train_loss")] == [2.0, 1.0]
    assert client.get_run(failed).info.status == "FAILED"
    assert client.get_run(failed).data.tags["blocknas.error"] == "Traceback: boom"
    assert client.get_run(lost).info.status == "KILLED"  # in flight when the run was stopped


def test_the_no_op_observer_records_nothing_and_an_unreachable_server_gives_it(tmp_path, capsys):
    quiet = NoObserver()
    assert quiet.block_start(BLOCK, JOB, "node", 1) is None
    quiet.block_complete(None, RESULT)
    quiet.front([], {})
    quiet.run_end("FINISHED")
    unreachable = MlflowObserver("http://127.0.0.1:9", "exp").run_start("run", {}, {})
    assert isinstance(unreachable, NoObserver) and unreachable.run_id is None
    assert "MLflow tracking is off for this run" in capsys.readouterr().err
