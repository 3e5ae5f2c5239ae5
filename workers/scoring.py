"""Scorers: turn a network job into a measured result.

- ``swap_in``: MathNAS swap-in accuracy by real training on MNIST;
- ``tabular``: a lookup in a tabular benchmark (NAS-Bench-201); each job is one counted evaluation.
"""

from __future__ import annotations

import time

import torch

from workers.costs import analytic_costs
from workers.data import mnist_split
from workers.profiling import count_flops, count_params
from workers.records import NetworkJob, NetworkResult
from workers.spaces import CnnSpace, Nb201Space
from workers.tabular import nb201_accuracies
from workers.training import resolve_device, seed_everything, train_and_evaluate


def score_network(job: NetworkJob) -> NetworkResult:
    return score_tabular(job) if job.scorer == "tabular" else score_by_training(job)


def score_tabular(job: NetworkJob) -> NetworkResult:
    """The network's NAS-Bench-201 accuracy (mean over seeds, 200 epochs) for the job's dataset."""
    started = time.perf_counter()
    space = Nb201Space.from_dict(job.space)
    accuracy = nb201_accuracies(job.dataset)[space.network_key(job.choices)]
    params, flops = (analytic_costs(space, m) for m in ("params", "flops"))
    return NetworkResult(
        accuracy=accuracy,
        loss=None,
        train_loss=None,
        train_seconds=time.perf_counter() - started,
        params=int(params.total(job.choices)),
        flops=int(flops.total(job.choices)),
        device="table",
    )


def score_by_training(job: NetworkJob) -> NetworkResult:
    """Train the job's network briefly on MNIST and evaluate it on the held-out split.

    Seeded and deterministic on CPU: the same job gives the same numbers on any run.
    """
    settings = job.settings
    seed_everything(settings.seed, settings.threads)
    space = CnnSpace.from_dict(job.space)
    model = space.build_network(job.choices)
    input_shape = (1, space.input_channels, space.input_size, space.input_size)
    params, flops = count_params(model), count_flops(model, input_shape)
    data = mnist_split(settings.train_size, settings.val_size, settings.seed)
    device = resolve_device(job.device)
    torch.manual_seed(settings.seed)  # re-seed after profiling so init does not depend on it
    model = space.build_network(job.choices)
    outcome = train_and_evaluate(model, data, settings, device)
    return NetworkResult(
        accuracy=outcome.accuracy,
        loss=outcome.loss,
        train_loss=outcome.train_loss,
        train_seconds=outcome.seconds,
        params=params,
        flops=flops,
        device=str(device),
    )
