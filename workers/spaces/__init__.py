"""Search spaces: slots, candidate blocks with stable string keys, and network builders."""

from workers.spaces._blocks import build_block, decode_block
from workers.spaces.cnn import CnnSpace, SearchSpaceError, SlotSpec
from workers.spaces.nb201 import Nb201Space

SPACE_KINDS = {"cnn": CnnSpace, "nb201": Nb201Space}
Space = CnnSpace | Nb201Space


def space_from_dict(spec: dict) -> Space:
    """The search space a config describes (``kind: cnn`` or ``kind: nb201``)."""
    kind = spec.get("kind")
    if kind not in SPACE_KINDS:
        raise SearchSpaceError(f"space.kind must be one of {sorted(SPACE_KINDS)}, got {kind!r}")
    return SPACE_KINDS[kind].from_dict(spec)


__all__ = ["CnnSpace", "Nb201Space", "SPACE_KINDS", "SlotSpec", "SearchSpaceError", "Space", "build_block",
           "decode_block", "space_from_dict"]
