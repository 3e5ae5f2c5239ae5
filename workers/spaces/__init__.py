"""Search spaces: slots, candidate blocks with stable string keys, and network builders.

``SPACES`` holds the space kinds (``space.kind``): ``cnn`` (a chain CNN of named blocks), ``nb201`` (the
NAS-Bench-201 cell), ``torch`` (your own PyTorch space, ``blocknas.workers.spaces.torch_space``) and ``llm`` (a
parent decoder's sub-blocks, ``blocknas.workers.llm.space``). A third-party
kind is any object with ``from_dict(spec) -> space``, registered or named by entry point / import path.
"""

from blocknas.workers.registry import Registry, RegistryError
from blocknas.workers.spaces._blocks import BLOCKS, build_block, decode_block
from blocknas.workers.spaces.cnn import CnnSpace, SearchSpaceError, SlotSpec
from blocknas.workers.spaces.nb201 import Nb201Space
from blocknas.workers.spaces.protocol import SearchSpace
from blocknas.workers.spaces.torch_space import TorchSlot, TorchSpace, torch_space_from_dict


class _TorchKind:
    from_dict = staticmethod(torch_space_from_dict)


SPACES: Registry = Registry("space")
SPACES.register("cnn", CnnSpace)
SPACES.register("nb201", Nb201Space)
SPACES.register("torch", _TorchKind)


# ``llm`` (blocknas.workers.llm.space.LlmSpace) registers as any plugin does, by an entry point of
# blocknas.spaces (pyproject.toml): the spaces package knows nothing of the language-model side.
Space = SearchSpace  # CnnSpace, Nb201Space, TorchSpace, LlmSpace or a kind of your own


def space_from_dict(spec: dict) -> Space:
    """The search space a config describes (``space.kind`` names its kind)."""
    try:
        kind = SPACES.get(spec.get("kind"), "space.kind")
    except RegistryError as exc:
        raise SearchSpaceError(str(exc)) from exc
    return kind.from_dict(spec)


__all__ = [
    "BLOCKS",
    "CnnSpace",
    "Nb201Space",
    "SPACES",
    "SearchSpace",
    "SlotSpec",
    "SearchSpaceError",
    "Space",
    "TorchSlot",
    "TorchSpace",
    "build_block",
    "decode_block",
    "space_from_dict",
]
