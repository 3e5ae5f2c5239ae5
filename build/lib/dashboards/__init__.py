"""Read-only views: Pareto plots and reports built from plain data, the table and MLflow."""
