"""``mlx import SOURCE`` and ``mlx forget SOURCE``: change who owns a model, not its files.

``import`` makes a model that is already in its store managed by this mlx.yaml's workspace
(prune may then delete it when the file stops declaring it); ``forget`` drops this
workspace's claim; the files stay, and become the user's when no workspace owns them
(docs/apply.md, "Ownership").
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, NoColorOpt, QuietOpt, Run, VerboseOpt, lock_seconds
from mlxstate.errors import MlxError

if TYPE_CHECKING:
    from mlxstate.settings import Settings
    from mlxstate.sources import HfSource, OllamaSource
    from mlxstate.spec.load import LoadedSpec

__all__ = ["forget_command", "import_command"]

SourceArg = Annotated[
    str, typer.Argument(help="The model: ollama://NAME[:TAG] or hf://ORG/REPO.", show_default=False)
]
LockTimeoutOpt = Annotated[
    str, typer.Option("--lock-timeout", help="Wait this long for a running apply (e.g. 30s).")
]


def import_command(
    source: SourceArg,
    name: Annotated[
        str | None, typer.Option("--name", help="Name to record when mlx.yaml does not declare it.")
    ] = None,
    lock_timeout: LockTimeoutOpt = "0s",
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make a model already in its store managed by this mlx.yaml (prune may delete it)."""
    from mlxstate.registry import Registry

    run = Run.make(file, no_color, quiet, verbose)
    wait = lock_seconds(lock_timeout)
    loaded, settings = _workspace(run)
    src = _model_source(source)
    stored = _on_disk(src, settings)
    # The declared name first (docs/commands.md): it is what a source change under prune
    # finds the old model by; --name only names a model this file does not declare.
    label = _declared_name(loaded, stored) or name or _derived_name(loaded, src)
    with _locked(settings, wait), Registry.open(settings.state_dir) as registry:
        facts = registry.facts(settings.workspace)
        managed = facts.find(stored, settings_folds(settings))
        if managed is not None and settings.workspace in managed.owner_names:
            _say(quiet, f"{stored} is already managed by workspace {settings.workspace}")
            return
        with registry.transaction():
            if managed is None:
                registry.add_model(stored, label, None, settings.workspace or "")
            else:
                registry.claim(managed.source, settings.workspace or "", label)
    _say(
        quiet,
        f"{stored} is now managed by workspace {settings.workspace} as {label!r}: "
        "prune: true deletes it once mlx.yaml no longer declares it",
    )


def forget_command(
    source: SourceArg,
    lock_timeout: LockTimeoutOpt = "0s",
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Drop this mlx.yaml's claim on a model; its files stay where they are."""
    from mlxstate.registry import Registry

    run = Run.make(file, no_color, quiet, verbose)
    wait = lock_seconds(lock_timeout)
    _, settings = _workspace(run)
    src = _model_source(source)
    ws = settings.workspace or ""
    with _locked(settings, wait), Registry.open(settings.state_dir) as registry:
        managed = registry.facts(ws).find(str(src), settings_folds(settings))
        if managed is None or not ({ws, ""} & set(managed.owner_names)):
            owners = (
                ", ".join(w or "(before workspaces)" for w in managed.owner_names)
                if managed
                else ""
            )
            raise MlxError(
                f"{src} is not managed by workspace {ws}"
                + (f" (owners: {owners}; forget it from their mlx.yaml)" if owners else ""),
                hint="`mlx status` shows each managed model's owners",
            )
        with registry.transaction():
            unmanaged = registry.release(managed.source, ws)
        after = registry.facts(ws).find(managed.source, settings_folds(settings))
        left = after.owner_names if after is not None else ()
    if unmanaged:
        _say(quiet, f"{managed.source} is no longer managed: its files stay, and are yours")
    else:
        _say(
            quiet,
            f"workspace {ws} no longer owns {managed.source}; still owned by {', '.join(left)}",
        )


# -- helpers ----------------------------------------------------------------------------------


def _workspace(run: Run) -> tuple[LoadedSpec, Settings]:
    from mlxstate.spec.load import load_spec

    path, shown = run.find_spec()
    loaded = load_spec(path, run.env, display=shown)
    return loaded, run.settings(loaded)


def _model_source(text: str) -> OllamaSource | HfSource:
    from mlxstate.sources import HfSource, OllamaSource, parse_source

    try:
        src = parse_source(text.strip())
    except ValueError as exc:
        raise MlxError(f"{text!r}: {exc}") from None
    if not isinstance(src, OllamaSource | HfSource):
        raise MlxError(
            f"{text}: file:// sources are the user's files and are never managed by mlx",
            hint="import an ollama:// or hf:// model",
        )
    return src


def _on_disk(src: OllamaSource | HfSource, settings: Settings) -> str:
    """The source as the store spells it; an error when it is not there."""
    from mlxstate.match import hf_key
    from mlxstate.observe.ollama_store import read_one_model
    from mlxstate.observe.run import scan_hf
    from mlxstate.sources import OllamaSource

    if isinstance(src, OllamaSource):
        parts = (src.host, src.namespace, src.model, src.tag)
        if read_one_model(settings.ollama_models_dir, parts) is not None:
            return str(src)
        where = settings.ollama_models_dir
    else:
        cache = scan_hf(settings.hf_cache_dir)
        want = hf_key(src, cache.case_insensitive)
        for repo in cache.repos:
            if repo.repo_type == "model" and hf_key(repo, cache.case_insensitive) == want:
                return f"hf://{repo.repo_id}"
        where = settings.hf_cache_dir
    raise MlxError(
        f"{src} is not in {where}; there is nothing to import",
        hint="`mlx status` lists what is installed (repo ids exactly as on disk)",
    )


def _declared_name(loaded: LoadedSpec, stored: str) -> str | None:
    from mlxstate.match import source_key

    key = source_key(stored)
    return next(
        (n for n, m in loaded.spec.models.items() if source_key(str(m.parsed_source)) == key),
        None,
    )


def _derived_name(loaded: LoadedSpec, src: OllamaSource | HfSource) -> str:
    from mlxstate.naming import derive_name

    return derive_name(src, set(loaded.spec.models))


def settings_folds(settings: Settings) -> bool:
    from mlxstate.fsutil import folds_case

    return settings.hf_cache_dir.is_dir() and folds_case(settings.hf_cache_dir)


def _locked(settings: Settings, wait: float) -> AbstractContextManager[None]:
    """The apply lock: the registry changes only between applies, never during one."""
    from mlxstate.apply.lock import apply_lock

    return apply_lock(settings.state_dir, wait)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        sys.stdout.write(text + "\n")
