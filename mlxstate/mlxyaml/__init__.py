"""The ``mlx.yaml`` format: models, loading with positions, semantic rules."""
