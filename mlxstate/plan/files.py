"""Which files of a hub listing a model's ``include``/``exclude`` select."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from mlxstate.facts import RemoteFile

__all__ = ["wanted_files"]


def wanted_files(
    listing: Iterable[RemoteFile], include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[RemoteFile]:
    """The files ``snapshot_download(allow_patterns=include, ignore_patterns=exclude)`` fetches.

    Same rules as huggingface_hub's ``filter_repo_objects``: case-sensitive fnmatch where
    ``*`` crosses ``/``, and a pattern ending in ``/`` matches everything below it.
    """
    allow = [p + "*" if p.endswith("/") else p for p in include] if include is not None else None
    deny = [p + "*" if p.endswith("/") else p for p in exclude or ()]
    return [
        f
        for f in listing
        if (allow is None or any(fnmatch.fnmatchcase(f.path, p) for p in allow))
        and not any(fnmatch.fnmatchcase(f.path, p) for p in deny)
    ]
