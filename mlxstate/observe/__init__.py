"""Observers: read-only scans of every store. They never read model bytes, never need
the network (except the optional Ollama daemon probe) and never decide anything."""
