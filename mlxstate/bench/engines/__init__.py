"""Benchmark engines: one small interface (:mod:`mlxstate.bench.engines.base`), one file each."""
