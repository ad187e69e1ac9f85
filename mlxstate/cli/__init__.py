"""The ``mlx`` command line: one module per command, errors mapped in ``_errors``."""
