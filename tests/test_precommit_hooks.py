"""The hooks in ``.pre-commit-hooks.yaml``, run by the real ``pre-commit try-repo``.

pre-commit builds a virtualenv for the hook repository and pip-installs mlxstate into it,
so the test needs the package index (or the wheels pip is pointed at); it skips, saying
why, when pip cannot reach it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ruamel.yaml import YAML

from tests.helpers.lockfile import ollama_lock_for

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / ".pre-commit-hooks.yaml"
GOOD = "version: 1\nmodels:\n  qwen:\n    source: ollama://qwen3:8b\n"
BAD = "version: 1\nmodels:\n  llama:\n    sorce: hf://a/b\n"
# What pip needs to build and install mlxstate: the project, not its tests.
PROJECT = ("pyproject.toml", "README.md", "LICENSE", ".pre-commit-hooks.yaml", "mlxstate")


def test_hooks_file_declares_both_hooks() -> None:
    hooks = {h["id"]: h for h in YAML(typ="safe").load(HOOKS.read_text())}
    assert set(hooks) == {"mlx-validate", "mlx-lock-check"}
    assert hooks["mlx-validate"]["entry"] == "mlx validate"
    assert hooks["mlx-lock-check"]["entry"] == "mlx lock --check"
    assert all(h["language"] == "python" for h in hooks.values())


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit_all(repo: Path) -> str:
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    return _git(repo, "rev-parse", "HEAD")


def _hook_repo(into: Path) -> tuple[Path, str]:
    """A git repository holding this checkout's package and hooks (uncommitted edits
    included), at one commit: both runs below reuse the environment pre-commit builds."""
    into.mkdir()
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / name)
    return into, _commit_all(into)


def _index_unreachable() -> str | None:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        httpx.get(index.rstrip("/") + "/pip/", timeout=10, follow_redirects=True)
    except httpx.HTTPError as exc:
        return f"pre-commit installs the hook with pip and {index} is unreachable ({exc})"
    return None


@dataclass(frozen=True)
class Hooks:
    repo: Path
    rev: str
    home: Path  # PRE_COMMIT_HOME: the hook environment is built once for the module

    def run(self, target: Path, hook: str, *files: str) -> subprocess.CompletedProcess[str]:
        """``pre-commit try-repo`` in ``target`` on ``files`` (default: all files)."""
        selection = ["--files", *files] if files else ["--all-files"]
        # The hook id right after the repository: argparse takes both positionals together.
        argv = ["try-repo", str(self.repo), hook, "--ref", self.rev, "--color", "never"]
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", *argv, *selection],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PRE_COMMIT_HOME": str(self.home)},
        )


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Hooks:
    if shutil.which("git") is None:
        pytest.skip("pre-commit needs git, which is not installed")
    reason = _index_unreachable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("hooks")
    repo, rev = _hook_repo(root / "repo")
    return Hooks(repo, rev, root / "pre-commit-home")


@pytest.mark.slow
def test_mlx_validate_hook_passes_a_good_file_and_fails_a_bad_one(
    hooks: Hooks, tmp_path: Path
) -> None:
    target = tmp_path / "dotfiles"
    for folder, text in (("laptop", GOOD), ("studio", BAD)):
        (target / folder).mkdir(parents=True)
        (target / folder / "mlx.yaml").write_text(text)
    (target / "notes.yaml").write_text(BAD)  # not an mlx.yaml: the hook never sees it
    _commit_all(target)

    good = hooks.run(target, "mlx-validate", "laptop/mlx.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "mlx validate" in good.stdout and "Passed" in good.stdout

    both = hooks.run(target, "mlx-validate")
    assert both.returncode == 1, both.stdout + both.stderr
    assert "Failed" in both.stdout
    assert "studio/mlx.yaml:4:5: error: models.llama.sorce: unknown key 'sorce'" in both.stdout
    assert "laptop/mlx.yaml is valid" in both.stdout
    assert "notes.yaml" not in both.stdout


@pytest.mark.slow
def test_mlx_lock_check_hook_fails_on_a_missing_or_stale_lock(hooks: Hooks, tmp_path: Path) -> None:
    target = tmp_path / "team"
    target.mkdir()
    (target / "mlx.yaml").write_text(GOOD)
    _commit_all(target)
    missing = hooks.run(target, "mlx-lock-check")
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "mlx lock --check" in missing.stdout and "Failed" in missing.stdout

    (target / "mlx.lock").write_bytes(ollama_lock_for(GOOD))
    _git(target, "add", "mlx.lock")
    fresh = hooks.run(target, "mlx-lock-check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "Passed" in fresh.stdout

    (target / "mlx.yaml").write_text(GOOD.replace("qwen3:8b", "qwen3:14b"))
    _git(target, "add", "mlx.yaml")
    stale = hooks.run(target, "mlx-lock-check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "qwen: its mlx.yaml entry changed since it was locked" in stale.stdout
