"""Loopback fakes of the remote services mlxstate talks to (Ollama API, Hugging Face Hub).

Both are real HTTP servers bound to 127.0.0.1 on a free port; use them through the
fixtures in ``tests.fakes.fixtures`` or as context managers.
"""
