"""The MLflow adapter against a real SQLite MLflow store."""

from mlflow.tracking import MlflowClient

from orchestrator import tracking


def test_parent_and_nested_block_runs_are_recorded(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = tracking.prepare_experiment(uri, "exp", str(tmp_path / "artifacts"))
    assert tracking.prepare_experiment(uri, "exp", str(tmp_path / "artifacts")) == experiment_id
    parent = tracking.start_run(uri, experiment_id, "run-1", {"blocknas.experiment": "exp"}, {"config_hash": "abc"})
    child = tracking.start_run(uri, experiment_id, "s0:skip", {"blocknas.block": "s0:skip"},
                               {"slot": "s0", "scorer.steps": 10}, parent_run_id=parent)
    tracking.finish_run(uri, child, {"accuracy": 97.5, "loss": 0.1}, tags={"blocknas.device": "cpu"})
    artifact = tmp_path / "pareto_cpu.json"
    artifact.write_text("{}")
    tracking.log_artifacts(uri, parent, [artifact])
    tracking.finish_run(uri, parent)

    client = MlflowClient(uri)
    run = client.get_run(child)
    assert run.data.tags[tracking.PARENT_TAG] == parent
    assert run.data.metrics == {"accuracy": 97.5, "loss": 0.1}
    assert run.data.params == {"slot": "s0", "scorer.steps": "10"}
    assert run.info.status == "FINISHED" and run.info.run_name == "s0:skip"
    assert [a.path for a in client.list_artifacts(parent)] == ["pareto_cpu.json"]
    assert (tmp_path / "artifacts").is_dir()  # artifacts stay under the configured location


def test_ui_command_binds_to_localhost():
    assert "--host 127.0.0.1" in tracking.ui_command("sqlite:////x/mlflow.db")
