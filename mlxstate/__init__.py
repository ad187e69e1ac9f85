"""mlxstate: declarative manager for local LLM model stores."""

__version__ = "0.1.0"
