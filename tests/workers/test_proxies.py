"""The NAS-Bench-201 network in PyTorch matches the tabular space's FLOPs and parameters exactly; the
training-free proxies are deterministic for a seed, separate a cut cell from a working one, and fill a
block table through `blocknas run` with no training."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from blocknas.workers.costs import analytic_costs
from blocknas.workers.profiling import count_flops, count_params
from blocknas.workers.proxies import PROXIES, ProxySettings
from blocknas.workers.proxy_scores import proxy_score
from blocknas.workers.scoring import SCORERS
from blocknas.workers.spaces.nb201 import DATASET_SHAPES, OPS, Nb201Space
from blocknas.workers.spaces.nb201_torch import build_nb201_network, input_shape
from tests.conftest import run_cli, summary_of

CELLS = [
    ("nor_conv_3x3",) * 6,
    ("none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3"),
    *[tuple(OPS[j] for j in row) for row in np.random.default_rng(0).integers(0, 5, (4, 6))],
]


@pytest.mark.parametrize("dataset", sorted(DATASET_SHAPES))
def test_the_torch_network_has_the_tabular_spaces_flops_and_parameters(dataset):
    space = Nb201Space.from_dict({"dataset": dataset})
    flops, params = analytic_costs(space, "flops"), analytic_costs(space, "params")
    for cell in CELLS:
        network = build_nb201_network(space, cell)
        assert count_flops(network, input_shape(space)) == flops.total(cell)
        assert count_params(network) == params.total(cell)
        assert network(torch.zeros(input_shape(space, 2))).shape == (2, space.num_classes)


def test_a_cut_cell_passes_nothing_through_its_cells():
    space = Nb201Space.from_dict({"dataset": "cifar10", "cells_per_stage": 1})
    network = build_nb201_network(space, ("none",) * 6).eval()
    cell = network.features[2]
    assert torch.equal(cell(torch.randn(2, 16, 32, 32)), torch.zeros(2, 16, 32, 32))


def test_proxies_are_deterministic_for_a_seed_and_rank_a_cut_cell_last():
    space = Nb201Space.from_dict({"dataset": "cifar10", "cells_per_stage": 1})
    working, cut = ("nor_conv_3x3",) * 6, ("none",) * 6
    small = ProxySettings(batch=8)
    for proxy in PROXIES:
        first = proxy_score(proxy, space, working, small)
        assert first == proxy_score(proxy, space, working, small) and math.isfinite(first)
        assert proxy_score(proxy, space, cut, small) < first, proxy
    assert proxy_score("params", space, working) == pytest.approx(
        math.log(count_params(build_nb201_network(space, working)))
    )
    # the initialisation is the seed's: another seed gives another score where the score reads the weights
    assert proxy_score("grad_norm", space, working, small) != proxy_score(
        "grad_norm", space, working, ProxySettings(batch=8, seed=1)
    )


def test_every_proxy_is_a_registered_scorer_that_needs_no_training():
    for proxy in PROXIES:
        entry = SCORERS.get(f"proxy_{proxy}")
        assert not entry.trains and entry.uses_device and entry.settings is ProxySettings
    with pytest.raises(ValueError, match="scorer.batch"):
        ProxySettings(batch=1)


@pytest.mark.slow
def test_a_proxy_fills_the_nb201_block_table_with_no_training(home):
    result = run_cli(
        home,
        "run",
        "experiment=nb201",
        "scorer=proxy",
        "scorer.kind=proxy_synflow",
        "solver.predictor=linear",
        "cluster.num_cpus=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    assert summary["blocks_total"] == 30 and summary["blocks_trained"] == 30
    from blocknas.orchestrator.storage import PerformanceStore

    rows = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()
    assert {r.device for r in rows} == {"cpu"} and all(r.status == "done" for r in rows)
    by_block = {r.block: r.accuracy for r in rows}
    # synflow: cutting an edge costs the cell signal, a 3x3 convolution adds the most
    for edge in ("1<-0", "3<-0"):
        assert by_block[f"{edge}:none"] < by_block[f"{edge}:nor_conv_3x3"]
    assert all(target["pareto"] for target in summary["targets"].values())  # a front for every target


def test_deepmad_entropy_is_the_weighted_sum_of_cumulative_stage_entropies():
    from blocknas.workers.proxy_scores import deepmad_entropy

    layers = [(3, 9, 1024), (16, 9, 1024), (16, 1, 256)]  # two layers at 32x32, one 1x1 at 16x16
    h = [0.5 * math.log(3 * 9), 0.5 * math.log(16 * 9), 0.5 * math.log(16)]
    first, both = h[0] + h[1], sum(h)
    assert deepmad_entropy(layers) == pytest.approx(first + both)
    assert deepmad_entropy(layers, (1.0, 3.0)) == pytest.approx(first + 3 * both)
    assert deepmad_entropy(layers, (1.0,), depth_penalty=2.0) == pytest.approx(first + both - 2.0 * 0.25)


def test_the_structure_targets_depth_adds_up_over_blocks_and_deepmad_prefers_wider_kernels(home):
    from blocknas.orchestrator.config import load_settings
    from blocknas.workers.costs import depth_costs

    space = load_settings(["experiment=smoke"]).space
    table = depth_costs(space)
    for choices in itertools.product(*(slot.choices for slot in space.slots)):
        network = space.build_network(choices)
        assert table.total(choices) == sum(isinstance(m, torch.nn.Conv2d | torch.nn.Linear) for m in network.modules())
    deeper, shallower = ("conv_k3", *space.base[1:]), ("skip", *space.base[1:])  # slot 0: skip or a 3x3 conv
    assert proxy_score("deepmad", space, deeper) > proxy_score("deepmad", space, shallower)


@pytest.mark.slow
def test_a_deepmad_search_within_a_depth_budget_picks_a_network_that_fits(home):
    from blocknas.orchestrator.config import load_settings
    from blocknas.workers.costs import depth_costs

    space = load_settings([]).space  # the default MNIST CNN: a proxy trains nothing, so its 256 networks are cheap
    depths = sorted({depth_costs(space).total(c) for c in itertools.product(*(s.choices for s in space.slots))})
    budget = depths[len(depths) // 2]
    result = run_cli(
        home,
        "run",
        "name=deepmad",
        "scorer=proxy",
        "scorer.kind=proxy_deepmad",
        "solver.predictor=linear",
        "cluster.num_cpus=2",
        "+targets.depth={kind: structure}",
        f"+solver.budgets.depth={budget}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = summary_of(result)["best"]
    assert best["costs"]["depth"] <= budget
