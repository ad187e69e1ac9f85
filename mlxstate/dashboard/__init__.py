"""The dashboard's data: one snapshot document of the machine, the models and the agent
(docs/dashboard.md). ``sampler`` builds it; the watch agent writes it to the state folder
(``snapshot``); `mlx dashboard` and `mlx menubar` render it."""
