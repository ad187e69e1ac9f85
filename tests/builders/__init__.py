"""Builders that write the exact on-disk formats of the model stores (see FORMATS.md).

Each builder returns frozen facts about what it wrote, so a test can compare an observer's
result against them without re-deriving anything.
"""
