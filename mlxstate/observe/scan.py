"""``observe``: one read-only pass over every store, the input of status and plan."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlxstate.facts import AppState, DiskSpace, HfCache, Observed, OllamaDaemon
from mlxstate.fsutil import folds_case as default_folds_case
from mlxstate.observe.apps import scan_app
from mlxstate.observe.duplicates import HashCache, find_duplicates
from mlxstate.observe.hf_cache import scan_hf_cache
from mlxstate.observe.ollama_store import scan_ollama_store
from mlxstate.seams import DEFAULT, Seams
from mlxstate.settings import Settings

if TYPE_CHECKING:
    import httpx

    from mlxstate.mlxyaml.models import Spec

__all__ = ["observe", "scan_hf"]


def scan_hf(root: Path, folds_case: Callable[[Path], bool] = default_folds_case) -> HfCache:
    """The HF cache, knowing whether its filesystem folds case (repo ids then match in any
    case: docs/apply.md, "Confinement")."""
    cache = scan_hf_cache(root)
    return replace(cache, case_insensitive=cache.exists and folds_case(root))


def observe(
    settings: Settings,
    spec: Spec | None,
    *,
    probe: bool = True,
    client: httpx.Client | None = None,
    hash_cache: HashCache | None = None,
    lmstudio_models: Path | None = None,
    duplicates: bool = True,
    managed_links: tuple[tuple[str, Path], ...] = (),
    seams: Seams = DEFAULT,
) -> Observed:
    """Scan the Ollama store, the HF cache, the app folders; probe the daemon if asked."""
    ollama = scan_ollama_store(settings.ollama_models_dir)
    hf = scan_hf(settings.hf_cache_dir, seams.folds_case)
    apps = _apps(spec, lmstudio_models) + _left_apps(spec, managed_links)
    groups = find_duplicates(ollama, hf, apps, hash_cache) if duplicates else ()
    daemon = _probe(settings.ollama_host, client) if probe else None
    warnings = (*ollama.warnings, *hf.warnings, *(w for a in apps for w in a.warnings))
    return Observed(
        ollama,
        hf,
        daemon,
        apps,
        groups,
        tuple(warnings),
        existing_files=_existing_files(spec),
        now=seams.clock(),
        disk=tuple(
            d
            for d in (
                seams.disk_space(settings.ollama_models_dir),
                seams.disk_space(settings.hf_cache_dir),
            )
            if d is not None
        ),
    )


def _existing_files(spec: Spec | None) -> frozenset[Path]:
    from mlxstate.sources import FileSource

    paths = [
        m.parsed_source.path
        for m in (spec.models.values() if spec else ())
        if isinstance(m.parsed_source, FileSource)
    ]
    return frozenset(p for p in paths if p.exists())


def disk_space(path: Path) -> DiskSpace | None:
    """Free bytes on the filesystem that holds (or will hold) ``path``."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
        device = os.stat(probe).st_dev
    except OSError:
        return None
    return DiskSpace(path, device, usage.free)


def _probe(host: str, client: httpx.Client | None) -> OllamaDaemon:
    if client is None and (refused := port_closed(host)):
        # Nothing listens: say so without importing httpx (~100 ms of `mlx status`).
        return OllamaDaemon(host, False, error=refused)
    from mlxstate.observe.ollama_api import probe_daemon

    return probe_daemon(host, client)


def port_closed(host: str, timeout: float = 0.5) -> str | None:
    """Why a TCP connection to ``host`` (a URL) fails, or None when something accepts it."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return "connection refused (is `ollama serve` running?)"
    except TimeoutError:
        return "timed out"
    except OSError as exc:
        return f"cannot connect: {exc.strerror or exc}"


def _left_apps(spec: Spec | None, links: tuple[tuple[str, Path], ...]) -> tuple[AppState, ...]:
    """The links mlx made for apps no longer in mlx.yaml: looked at one by one (their folder
    is not known any more), so that the plan can remove them."""
    from mlxstate.observe.apps import scan_paths

    gone = sorted({app for app, _ in links if not spec or app not in spec.apps})
    return tuple(
        AppState(
            app,
            Path("/"),
            "dir",
            True,
            scan_paths([p for a, p in links if a == app]),
            declared=False,
        )
        for app in gone
    )


def _apps(spec: Spec | None, lmstudio_models: Path | None) -> tuple[AppState, ...]:
    apps = [
        scan_app(name, app.path, app.layout) for name, app in (spec.apps.items() if spec else ())
    ]
    declared = {a.path for a in apps}
    if lmstudio_models is not None and lmstudio_models not in declared and lmstudio_models.is_dir():
        found = scan_app("lmstudio", lmstudio_models, "lmstudio")
        apps.append(replace(found, declared=False))
    return tuple(apps)
