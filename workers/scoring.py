"""Scorers: turn a network job into a measured result (MathNAS swap-in accuracy by real training)."""

from __future__ import annotations

import torch

from workers.data import mnist_split
from workers.profiling import count_flops, count_params
from workers.records import NetworkJob, NetworkResult
from workers.spaces import CnnSpace
from workers.training import resolve_device, seed_everything, train_and_evaluate


def score_network(job: NetworkJob) -> NetworkResult:
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
