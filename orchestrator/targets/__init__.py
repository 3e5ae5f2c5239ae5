"""Hardware targets: the registry, its file formats, their fronts, switching and the scheduler."""
