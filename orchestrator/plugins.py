"""Every extension point, in one list: what ``blocknas plugins`` prints and what the tests iterate."""

from __future__ import annotations

from blocknas.workers.registry import Registry


def registries() -> list[Registry]:
    """Each registry: spaces, blocks, datasets, scorers, estimators, predictors, target kinds, target file
    formats, search methods, language-model parents, text sources and child formats. Each is open to entry
    points of its group (``blocknas.<kind>s``)."""
    from blocknas.orchestrator.estimation import ESTIMATOR_REGISTRY
    from blocknas.orchestrator.predictors import PREDICTORS
    from blocknas.orchestrator.search.methods import SEARCH_METHODS
    from blocknas.orchestrator.targets.files import TARGET_FORMATS
    from blocknas.orchestrator.targets.kinds import TARGET_KINDS
    from blocknas.workers.data import DATASETS
    from blocknas.workers.llm.child_formats import CHILD_FORMATS
    from blocknas.workers.llm.parents import PARENT_KINDS
    from blocknas.workers.llm.text import TEXT_SOURCES
    from blocknas.workers.scoring import SCORERS
    from blocknas.workers.spaces import BLOCKS, SPACES

    return [
        SPACES,
        BLOCKS,
        DATASETS,
        SCORERS,
        ESTIMATOR_REGISTRY,
        PREDICTORS,
        TARGET_KINDS,
        TARGET_FORMATS,
        SEARCH_METHODS,
        PARENT_KINDS,
        TEXT_SOURCES,
        CHILD_FORMATS,
    ]
