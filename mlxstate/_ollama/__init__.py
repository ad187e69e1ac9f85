"""Private parts of the Ollama client (mlxstate.client): counters, errors, result types and
the wire format, shared by the sync and async clients and by the benchmark engine."""
