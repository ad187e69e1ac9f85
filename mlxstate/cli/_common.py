"""Options every command takes and finding the spec file (docs/commands.md, "Common to
every command")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxstate.errors import SpecError, SpecNotFound

if TYPE_CHECKING:
    from mlxstate.observe.duplicates import HashCache
    from mlxstate.settings import Environment, Settings
    from mlxstate.spec.load import LoadedSpec

__all__ = ["FileOpt", "NoColorOpt", "QuietOpt", "Run", "VerboseOpt", "lock_seconds"]

FileOpt = Annotated[
    Path | None,
    typer.Option(
        "-f",
        "--file",
        help="Path of mlx.yaml (default: $MLX_FILE, ./mlx.yaml, ~/.config/mlx/mlx.yaml).",
        show_default=False,
        dir_okay=True,
    ),
]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="Plain output, no colours.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors.")]
VerboseOpt = Annotated[
    bool, typer.Option("-v", "--verbose", help="More detail; tracebacks on internal errors.")
]


@dataclass(frozen=True)
class Run:
    """What every command knows about how it was called."""

    file: Path | None
    no_color: bool
    quiet: bool
    verbose: bool
    env: Environment

    @classmethod
    def make(cls, file: Path | None, no_color: bool, quiet: bool, verbose: bool) -> Run:
        from mlxstate.settings import read_environment  # pydantic-settings: not for --version

        return cls(file, no_color, quiet, verbose, read_environment())

    def load_optional_spec(self) -> LoadedSpec | None:
        """The spec if one is found (it must be valid); ``None`` when there is none at all."""
        from mlxstate.spec.load import load_spec

        try:
            path, shown = self.find_spec()
        except SpecNotFound:
            if self.file is not None or self.env.MLX_FILE:
                raise  # asked for by name: its absence is an error
            return None
        return load_spec(path, self.env, display=shown)

    def settings(self, loaded: LoadedSpec | None) -> Settings:
        from mlxstate.settings import resolve

        if loaded is None:
            return resolve(None, self.env)
        return resolve(loaded.spec.settings, self.env, loaded.path)

    def status_document(self) -> dict[str, Any]:
        """Observe everything and build the ``mlx status`` document."""
        from mlxstate.observe.run import observe
        from mlxstate.registry import read_facts
        from mlxstate.status import build_status

        invalid: tuple[Path, str, int] | None = None
        try:
            loaded = self.load_optional_spec()
        except SpecError as exc:
            # status only reads: an invalid file hides the declarations, not the inventory.
            path, shown = self.find_spec()
            loaded, invalid = None, (path.absolute(), shown, max(1, len(exc.diagnostics)))
        settings = self.settings(loaded)
        facts = read_facts(settings.state_dir, settings.workspace)
        observed = observe(
            settings,
            loaded.spec if loaded else None,
            hash_cache=_registry_hash_cache(settings.state_dir),
            lmstudio_models=self.env.lmstudio_home() / "models",
        )
        return build_status(
            observed,
            loaded.spec if loaded else None,
            facts,
            loaded.path if loaded else None,
            invalid_spec=invalid,
        )

    def find_spec(self) -> tuple[Path, str]:
        """(path, how to show it) of the mlx.yaml to use, or :class:`SpecNotFound`."""
        if self.file is not None:
            if self.file.is_file() or (self.file.exists() and not self.file.is_file()):
                return self.file, str(self.file)
            raise SpecNotFound([self.file])
        from mlxstate.settings import spec_candidates

        candidates = spec_candidates(self.env)
        if self.env.MLX_FILE:
            # An explicit $MLX_FILE that names no file is a mistake, not a hint to look
            # elsewhere: silently using another mlx.yaml would act on the wrong machine state.
            chosen = candidates[0]
            if chosen.exists():
                return chosen, str(chosen)
            raise SpecNotFound([f"{chosen} (from $MLX_FILE)"])
        for place in candidates:
            if place.is_file():
                return place, str(place)
        raise SpecNotFound(candidates)


def lock_seconds(text: str) -> float:
    """``--lock-timeout``: ``0``/``0s`` or a duration (``30s``, ``10m``)."""
    from mlxstate.errors import MlxError
    from mlxstate.spec.types import parse_duration

    if text.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise MlxError(f"--lock-timeout: {exc}") from None


def _registry_hash_cache(state_dir: Path) -> HashCache:
    """Hash cache in the registry, opened only if a file actually needs hashing."""
    from mlxstate.registry import Registry

    holder: list[Registry] = []

    def registry() -> Registry:
        if not holder:
            holder.append(Registry.open(state_dir))
        return holder[0]

    def lookup(dev: int, ino: int, size: int, mtime_ns: int) -> str | None:
        return registry().cached_hash(dev, ino, size, mtime_ns)

    def store(dev: int, ino: int, size: int, mtime_ns: int, sha256: str) -> None:
        registry().remember_hash(dev, ino, size, mtime_ns, sha256)

    return lookup, store
