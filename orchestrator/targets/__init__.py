"""Hardware targets: the kinds a run measures or reads (``kinds``), the file formats of registered targets
(``files``), their budgets, whole-network tables, and the registry of registered targets. What answers from
them without retraining (fronts, pick, switch, the scheduler) is ``blocknas.orchestrator.deploy``."""
