"""MIP formulations: what a network is as variables and constraints (one block per slot, additive or pairwise
predictions; the structural rules of ``blocknas.solvers.structure`` as constraints). The drivers that solve
them (fronts, pools, cores, Dinkelbach) are one level up."""
