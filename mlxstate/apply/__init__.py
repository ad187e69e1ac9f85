"""Carrying out plans: the executor, its lock and journal, and one module of effects per
store. Every effect re-checks its precondition first and is idempotent."""
