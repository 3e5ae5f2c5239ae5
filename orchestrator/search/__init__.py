"""Search methods: how a run spends its evaluations (``search=<name>``), shared with ``blocknas bench``.

``methods.SEARCH_METHODS`` is the registry; ``problem.NetworkProblem`` is what a whole-network method works
on; ``network_stage`` runs one on the cluster; ``layernas`` is LayerNAS's layer-by-layer search.
"""
