"""The Ray side: the task wrapper that scores and records a network on a worker, and the driver's
fan-out with block leases."""
