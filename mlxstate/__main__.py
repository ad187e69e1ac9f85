"""``python -m mlxstate`` runs the ``mlx`` command."""

from mlxstate.cli.main import run

if __name__ == "__main__":
    run()
