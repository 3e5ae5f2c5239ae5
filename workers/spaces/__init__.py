"""Search spaces: slots, candidate blocks with stable string keys, and network builders."""

from workers.spaces._blocks import build_block, decode_block
from workers.spaces.cnn import CnnSpace, SearchSpaceError, SlotSpec

__all__ = ["CnnSpace", "SlotSpec", "SearchSpaceError", "build_block", "decode_block"]
