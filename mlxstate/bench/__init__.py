"""Benchmarks: run declared benchmarks against an engine (Ollama, MLX), keep every run in the
registry, compare and chart them (docs/benchmarks.md)."""
