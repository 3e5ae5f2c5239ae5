"""The MLflow adapter against a real SQLite MLflow store."""

from mlflow.tracking import MlflowClient

from blocknas.orchestrator import tracking


def test_parent_and_nested_block_runs_are_recorded(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = tracking.prepare_experiment(uri, "exp", str(tmp_path / "artifacts"))
    assert tracking.prepare_experiment(uri, "exp", str(tmp_path / "artifacts")) == experiment_id
    parent = tracking.start_run(uri, experiment_id, "run-1", {"blocknas.experiment": "exp"}, {"config_hash": "abc"})
    child = tracking.start_run(
        uri,
        experiment_id,
        "s0:skip",
        {"blocknas.block": "s0:skip"},
        {"slot": "s0", "scorer.steps": 10},
        parent_run_id=parent,
    )
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


def test_the_block_view_names_its_runs_and_falls_back_to_every_block_run_past_mlflows_tag_limit(tmp_path):
    import json

    from blocknas.orchestrator.pipeline.block_views import block_view

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = tracking.prepare_experiment(uri, "exp", str(tmp_path / "artifacts"))
    parent = tracking.start_run(uri, experiment_id, "run-1", {"blocknas.kind": "run"}, {})
    blocks = [
        tracking.start_run(uri, experiment_id, f"s0:b{k}", {"blocknas.kind": "block"}, {}, parent_run_id=parent)
        for k in range(3)
    ]
    client = MlflowClient(uri)
    for ids, expected in ((blocks[:2], set(blocks[:2])), (blocks + [f"{k:032x}" for k in range(500)], set(blocks))):
        view = block_view(ids, ["cost.flops"])
        assert "metrics.`cost.flops`" in view["selectedColumns"] and view["orderByKey"] == "metrics.`value`"
        # MLflow refuses an experiment tag over its limit: the view must always fit
        client.set_experiment_tag(experiment_id, f"{tracking.SHARED_VIEW}x", json.dumps(view))
        assert {r.info.run_id for r in client.search_runs([experiment_id], view["searchFilter"])} == expected
