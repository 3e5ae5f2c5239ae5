import pytest

from blocknas.orchestrator.config import load_settings
from blocknas.orchestrator.estimation import EstimatorSettings
from blocknas.orchestrator.experiments import make_plan
from blocknas.orchestrator.planning import (
    JobSpec,
    choose_space_contexts,
    pending_networks,
    plan_blocks,
    scorer_fingerprint,
)
from blocknas.workers.costs import analytic_costs


def test_context_is_the_block_nearest_each_slots_mean_flops():
    space = load_settings(["space=mnist_cnn"]).space
    flops = analytic_costs(space, "flops")
    (context,) = choose_space_contexts(space, EstimatorSettings("avg_context"), flops)
    for i, slot in enumerate(space.slots):
        values = {c: flops.blocks[(i, c)] for c in slot.choices}
        mean = sum(values.values()) / len(values)
        assert abs(values[context[i]] - mean) == min(abs(v - mean) for v in values.values())


def test_plan_measures_every_block_with_m_times_n_minus_1_plus_1_trainings():
    settings = load_settings([])
    plan = make_plan(settings)
    m, n = len(settings.space.slots), 4
    assert len(plan.blocks) == m * n
    assert len({b.job_hash for b in plan.blocks}) == m * n
    assert len(plan.networks) == m * (n - 1) + 1
    (context,) = plan.contexts
    shared = [b for b in plan.blocks if b.choice == context[b.slot_index]]
    assert len({b.network_hash for b in shared}) == 1 and len(shared) == m
    for block in plan.blocks:
        choices = plan.networks[block.network_hash].choices
        assert choices[block.slot_index] == block.choice
        assert all(c == context[i] for i, c in enumerate(choices) if i != block.slot_index)


def test_base_estimator_uses_the_base_network_and_sampled_several_contexts():
    base = make_plan(load_settings(["experiment=smoke", "scorer.estimator=base", "+space.base=[sep_k3,conv_k3]"]))
    assert base.contexts == (("sep_k3", "conv_k3"),) and len(base.networks) == 1 + 2 + 2
    sampled = make_plan(load_settings(["experiment=smoke", "scorer.estimator=sampled", "scorer.sample_fraction=1.0"]))
    # 9 networks / 5 per context: 2 distinct contexts, every block measured in each, overlapping networks once
    assert len(sampled.contexts) == 2 and len(sampled.blocks) == 2 * 6
    assert len(sampled.networks) < 2 * 5 and len({b.job_hash for b in sampled.blocks}) == 12


def test_nb201_plan_samples_only_connected_contexts():
    plan = make_plan(load_settings(["experiment=nb201", "scorer.estimator=sampled", "scorer.sample_fraction=0.02"]))
    assert len(plan.contexts) == round(0.02 * 15625 / 25)
    from blocknas.workers.spaces import Nb201Space

    assert all(Nb201Space.is_connected(c) for c in plan.contexts)
    assert all(job.scorer == "tabular" and job.settings.dataset == "cifar10" for job in plan.networks.values())


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["experiment=nb201", "scorer=swap_in"],
            "scorer.kind=swap_in trains networks, but space.kind=nb201 builds none",
        ),
        (["experiment=smoke", "scorer=nb201_tabular"], "scorer.kind=tabular works on space.kind nb201, not 'cnn'"),
        (["experiment=nb201", "scorer.dataset=mnist"], "scorer.dataset must be one of"),
        (["experiment=nb201", "scorer.estimator=best"], "estimator must be one of"),
        (
            ["experiment=nb201", "solver.predictor=mlp"],
            "solver.predictor .mlp. is not a known predictor; valid: flops, linear",
        ),
        (
            ["experiment=nb201", "+targets.t={kind: measured, metric: latency_ms, warmup: 1, repeats: 1, threads: 1}"],
            "network_table target",
        ),
        (["experiment=nb201", "+targets.t={kind: network_table, metric: latency_ms}"], "targets.t.file is required"),
    ],
)
def test_estimator_predictor_and_space_mismatches_are_config_errors(overrides, message):
    from blocknas.orchestrator.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_settings(overrides)


def test_hashes_are_stable_and_cover_what_affects_results():
    base = make_plan(load_settings(["experiment=smoke"]))
    assert [b.job_hash for b in make_plan(load_settings(["experiment=smoke"])).blocks] == [
        b.job_hash for b in base.blocks
    ]
    for override in ("scorer.seed=3", "scorer.steps=81", "scorer.val_size=400"):
        changed = make_plan(load_settings(["experiment=smoke", override]))
        assert not {b.job_hash for b in changed.blocks} & {b.job_hash for b in base.blocks}, override
    placement = make_plan(load_settings(["experiment=smoke", "resources.cpus_per_block=2", "name=other"]))
    assert [b.job_hash for b in placement.blocks] == [b.job_hash for b in base.blocks]


def test_data_fingerprint_is_part_of_the_scorer_hash():
    settings = load_settings(["experiment=smoke"])
    train = settings.scorer.settings_dict()
    a = scorer_fingerprint("swap_in", "mnist", "data-v1", train)
    b = scorer_fingerprint("swap_in", "mnist", "data-v2", train)
    ctx = (("skip", "conv_k3"),)
    plan_a = plan_blocks(settings.space, settings.space_definition, ctx, JobSpec(a, settings.scorer.settings))
    plan_b = plan_blocks(settings.space, settings.space_definition, ctx, JobSpec(b, settings.scorer.settings))
    assert plan_a.blocks[0].job_hash != plan_b.blocks[0].job_hash


def test_pending_skips_done_blocks_and_keeps_shared_networks_once():
    plan = make_plan(load_settings(["experiment=smoke"]))
    assert sum(len(v) for v in pending_networks(plan, set()).values()) == len(plan.blocks)
    done = {b.job_hash for b in plan.blocks[:2]}
    pending = pending_networks(plan, done)
    assert {b.job_hash for v in pending.values() for b in v} == {b.job_hash for b in plan.blocks[2:]}
    assert pending_networks(plan, {b.job_hash for b in plan.blocks}) == {}


def last_choices(settings, sizes, base, flops, is_valid):
    """A third-party estimator: one context network, the last candidate of every slot."""
    return (tuple(n - 1 for n in sizes),)


def test_an_estimator_of_ones_own_is_loaded_by_import_path():
    settings = load_settings(["experiment=smoke", f"scorer.estimator={__name__}:last_choices"])
    plan = make_plan(settings)
    assert plan.contexts == (("sep_k3", "mbconv_k3_e2"),) and len(plan.networks) == 5
    from blocknas.orchestrator.config import ConfigError

    with pytest.raises(ConfigError, match="estimator must be one of .* \\(did you mean 'sampled'\\?\\)"):
        load_settings(["experiment=smoke", "scorer.estimator=sampeld"])
