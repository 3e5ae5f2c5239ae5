"""The only part of blocknas with side effects: CLI, planning, Ray fan-out, storage, tracking, solving."""
