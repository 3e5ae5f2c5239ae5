"""The computations of ``blocknas.workers.proxies`` (torch): the network, the minibatch and each proxy's score."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from blocknas.workers.proxies import PROXIES, ProxySettings

FLOOR = 1e-300  # a network with no signal (a cut NAS-Bench-201 cell) scores log(FLOOR), finite
DEFAULT = ProxySettings()


def network_of(space, choices) -> tuple[nn.Module, tuple[int, ...]]:
    """The job's network and its input shape ``(1, C, H, W)``."""
    from blocknas.workers.spaces.nb201 import Nb201Space

    if isinstance(space, Nb201Space):
        from blocknas.workers.spaces.nb201_torch import build_nb201_network, input_shape

        return build_nb201_network(space, choices), input_shape(space)
    if not getattr(space, "builds_modules", False):
        raise ValueError(f"space {space.name!r} builds no modules: a training-free proxy needs the network")
    return space.build_network(tuple(choices)), tuple(space.input_shape)


def minibatch(shape: tuple[int, ...], num_classes: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from blocknas.workers.data import load_dataset

    data = load_dataset({"kind": "mnist"})
    pick = np.random.default_rng(seed).choice(len(data.labels), size=batch, replace=False)
    images = torch.from_numpy(data.images[pick])
    images = F.interpolate(images, size=shape[2:], mode="bilinear", align_corners=False)
    images = (images - images.mean()) / images.std().clamp_min(1e-6)
    return images.repeat(1, shape[1], 1, 1), torch.from_numpy(data.labels[pick] % num_classes)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def synflow(model: nn.Module, shape: tuple[int, ...]) -> float:
    model = model.double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            p.abs_()
    model.zero_grad()
    model(torch.ones(shape, dtype=torch.float64)).sum().backward()
    total = sum(float((w.detach() * w.grad).abs().sum()) for w in _weights(model) if w.grad is not None)
    return math.log(max(total, FLOOR))


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.train().zero_grad()
    F.cross_entropy(model(x), y).backward()
    total = sum(float(w.grad.norm()) for w in _weights(model) if w.grad is not None)
    return math.log(max(total, FLOOR))


def naswot(model: nn.Module, x: torch.Tensor) -> float:
    codes = []

    def hook(_module, inputs, _output):
        codes.append((inputs[0].detach().flatten(1) > 0).double())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model.train()(x)
    finally:
        for handle in handles:
            handle.remove()
    if not codes:
        return 0.0
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(kernel).logabsdet)


def layer_structure(model: nn.Module, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """``(input channels per group, kernel, output resolution)`` of every convolution, in forward order."""
    layers = []

    def hook(module: nn.Conv2d, _inputs, output):
        layers.append(
            (
                module.in_channels // module.groups,
                module.kernel_size[0] * module.kernel_size[1],
                output.shape[-1] * output.shape[-2],
            )
        )

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(shape))
    finally:
        for handle in handles:
            handle.remove()
    return layers


def deepmad_entropy(
    layers: list[tuple[int, int, int]], stage_weights: tuple[float, ...] = (), depth_penalty: float = 0.0
) -> float:
    """DeepMAD's weighted multi-stage entropy of ``layer_structure`` (``blocknas.workers.proxies``)."""
    stages: list[list[float]] = []
    resolution = None
    for channels, kernel_area, area in layers:
        if area != resolution:
            stages.append([])
            resolution = area
        stages[-1].append(0.5 * math.log(channels * kernel_area))
    if not stages:
        return 0.0
    weights = [stage_weights[min(j, len(stage_weights) - 1)] if stage_weights else 1.0 for j in range(len(stages))]
    cumulative = np.cumsum([sum(stage) for stage in stages])
    return float(np.dot(weights, cumulative) - depth_penalty * np.var([len(stage) for stage in stages]))


def proxy_score(name: str, space, choices, settings: ProxySettings = DEFAULT, device="cpu") -> float:
    if name not in PROXIES:
        raise ValueError(f"unknown proxy {name!r}; one of {PROXIES}")
    torch.manual_seed(settings.seed)
    model, shape = network_of(space, choices)
    if name == "params":
        return math.log(max(1, sum(p.numel() for p in model.parameters())))
    if name == "deepmad":
        return deepmad_entropy(layer_structure(model, shape), settings.stage_weights, settings.depth_penalty)
    model = model.to(device)
    if name == "synflow":
        return synflow(model, shape)  # float64 on the device: a per-network sum over orders of magnitude
    x, y = minibatch(shape, space.num_classes, settings.batch, settings.seed)
    x, y = x.to(device), y.to(device)
    return grad_norm(model, x, y) if name == "grad_norm" else naswot(model, x)
