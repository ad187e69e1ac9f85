"""The reconcile loop (`mlx watch`) and the per-user service that runs it (`mlx agent`)."""
