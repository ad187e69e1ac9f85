"""Golden planner cases kept as data (``plan/*.yaml``) and the loader that reads them."""
