"""The jobs the command line starts: ``run`` (the search and the solve) and ``llm_export`` (a language
model's library and its children). They run the stages of ``blocknas.orchestrator.pipeline``."""
