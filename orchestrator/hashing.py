"""Content hashes: everything that affects a result goes in, so finished work is never redone."""

from __future__ import annotations

import hashlib
import json


def content_hash(payload: object, length: int = 16) -> str:
    """sha256 of the canonical JSON of ``payload`` (sorted keys), truncated to ``length`` hex digits."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
