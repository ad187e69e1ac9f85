"""Planning: a pure diff of mlx.yaml against observed state (``planner``), typed frozen
actions (``actions``), and their rendering as text and JSON (``render``)."""
