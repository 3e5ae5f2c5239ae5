"""Pure compute that runs inside Ray tasks: search spaces, data, training, scoring and cost profiling.

Nothing here knows about the performance table, MLflow, Ray or the solver: a worker takes a plain job
description and returns a plain result record.
"""
