"""A user's own NAS project for blocknas: a PyTorch search space, a data loader and a scorer of its own."""
