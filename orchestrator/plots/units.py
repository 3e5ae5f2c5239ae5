"""The unit each cost metric is given in, for axis labels and printed tables."""

UNITS = {
    "flops": "MACs",
    "params": "params",
    "latency_ms": "ms",
    "energy_mj": "mJ",
    "memory_mib": "MiB",
    "depth": "layers",
    "runtime_ms": "ms",
    "decode_ms": "ms",
    "workload_ms": "ms",
}


def unit_of(metric: str) -> str:
    return UNITS.get(metric, metric)
