"""The pipeline stages of a search: plan the block jobs, cost them per target, solve the fronts,
verify and refine, report."""
