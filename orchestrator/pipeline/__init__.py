"""The stages of a search: cost the block jobs per target, solve the fronts, verify and refine, report.
What to measure (``planning``) and how a block's value is estimated (``estimation``) sit below them, in
``blocknas.orchestrator``; the jobs that run the stages are in ``blocknas.orchestrator.jobs``."""
