"""Search spaces: slots, candidate blocks with stable string keys, and network builders.

``SPACES`` holds the space kinds (``space.kind``): ``cnn`` (a chain CNN of named blocks), ``nb201`` (the
NAS-Bench-201 cell), ``torch`` (your own PyTorch space, ``workers.spaces.torch_space``) and ``llm`` (a
parent decoder's sub-blocks, ``workers.llm.space``). A third-party
kind is any object with ``from_dict(spec) -> space``, registered or named by entry point / import path.
"""

from workers.registry import Registry, RegistryError
from workers.spaces._blocks import BLOCKS, build_block, decode_block
from workers.spaces.cnn import CnnSpace, SearchSpaceError, SlotSpec
from workers.spaces.nb201 import Nb201Space
from workers.spaces.torch_space import TorchSlot, TorchSpace, torch_space_from_dict


class _TorchKind:
    from_dict = staticmethod(torch_space_from_dict)


SPACES: Registry = Registry("space")
SPACES.register("cnn", CnnSpace)
SPACES.register("nb201", Nb201Space)
SPACES.register("torch", _TorchKind)


class _LlmKind:
    @staticmethod
    def from_dict(spec: dict):
        from workers.llm.space import LlmSpace

        return LlmSpace.from_dict(spec)


SPACES.register("llm", _LlmKind)
Space = CnnSpace | Nb201Space | TorchSpace  # or workers.llm.space.LlmSpace


def space_from_dict(spec: dict) -> Space:
    """The search space a config describes (``space.kind`` names its kind)."""
    try:
        kind = SPACES.get(spec.get("kind"), "space.kind")
    except RegistryError as exc:
        raise SearchSpaceError(str(exc)) from exc
    return kind.from_dict(spec)


__all__ = ["BLOCKS", "CnnSpace", "Nb201Space", "SPACES", "SlotSpec", "SearchSpaceError", "Space",
           "TorchSlot", "TorchSpace", "build_block", "decode_block", "space_from_dict"]
