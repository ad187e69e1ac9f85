"""``mlx show PLANFILE``: a plan saved by ``mlx plan --out`` as ``mlx plan`` shows it.

The file is read as untrusted data, exactly as ``mlx apply PLANFILE`` reads it (every action
parsed and its fields checked); nothing is planned, observed or changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt

__all__ = ["command"]


def command(
    planfile: Annotated[Path, typer.Argument(help="A plan saved by `mlx plan --out FILE`.")],
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Print the plan as one JSON document (normalized)."),
    ] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a saved plan as `mlx plan` would; change nothing."""
    from mlxstate.cli._output import emit_json, show_plan
    from mlxstate.saved_plan import load_saved_plan

    Invocation.make(file, no_color, quiet, verbose)
    saved = load_saved_plan(planfile)
    doc = _raw(planfile)
    plan = _plan(saved.actions, doc)
    if json_out:
        emit_json(_normalized(plan, saved, doc))
        return
    workspace = doc.get("workspace")
    host = doc.get("host")
    named = isinstance(host, dict) and isinstance(host.get("name"), str)
    show_plan(
        plan,
        no_color,
        workspace if isinstance(workspace, str) else None,
        _host(host) if named else None,
    )


def _raw(path: Path) -> dict[str, Any]:
    """The document again, for the fields a plan shows but apply does not need (already
    checked to be a format_version 1 plan by load_saved_plan)."""
    import json

    from mlxstate.errors import MlxError

    try:
        with path.open("rb") as handle:
            doc = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):  # replaced since it was checked a moment ago
        raise MlxError(f"{path} changed while it was read; run `mlx show` again")
    return doc


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _plan(actions: Any, doc: dict[str, Any]) -> Any:
    from mlxstate.plan.actions import Plan, Skipped

    entries = doc.get("skipped")
    # Only entries shaped as plan writes them (``model/NAME`` or ``app/NAME``, strings):
    # the file is untrusted and rendering splits the id.
    skipped = tuple(
        Skipped(s["id"], s["subject"], s["reason"])
        for s in (entries if isinstance(entries, list) else [])
        if isinstance(s, dict)
        and all(isinstance(s.get(k), str) for k in ("id", "subject", "reason"))
        and "/" in s["id"]
    )
    return Plan(
        actions=actions,
        warnings=_strings(doc.get("warnings")),
        conflicts=_strings(doc.get("conflicts")),
        skipped=skipped,
    )


def _normalized(plan: Any, saved: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """The plan JSON rebuilt from what was parsed: canonical fields and order, summary
    recomputed, unknown fields dropped (what `mlx apply` would act on)."""
    from mlxstate.plan.render import plan_json

    out = plan_json(
        plan,
        spec_path=str(saved.spec_path),
        spec_sha256=str(saved.spec_sha256),
        fingerprint=str(saved.fingerprint),
    )
    if isinstance(doc.get("mlxstate_version"), str):
        out["mlxstate_version"] = doc["mlxstate_version"]  # which version made it
    for key in ("workspace", "host", "options", "lock"):
        if key in doc:
            out[key] = doc[key]
    return out


def _host(doc: Any) -> Any:
    from mlxstate.hosts import Host

    memory = doc.get("memory_bytes")
    os_name = doc.get("os") if doc.get("os") in ("macos", "linux") else None
    return Host(
        str(doc["name"]),
        memory if isinstance(memory, int) else None,
        os_name,
        given=doc.get("given") is True,
    )
