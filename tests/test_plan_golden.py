"""Golden planner cases: each ``tests/golden/plan/*.yaml`` is (spec, observed, registry,
targets, remote) → the exact plan ``make_plan`` must produce. See ``tests/golden/loader.py``
for the format. A case with ``known_bug:`` records the CORRECT expectation for a planner
bug that is not fixed yet: it runs as a strict xfail, so fixing the bug makes it fail
until the marker is removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlxstate.mlxyaml.rules import check
from mlxstate.plan.actions import Action, Plan, PlanProblem
from mlxstate.plan.planner import make_plan
from mlxstate.settings import Environment
from tests.golden.loader import (
    BASE_DIR,
    CASES_DIR,
    Case,
    CaseError,
    ExpectedAction,
    ExpectedProblem,
    case_files,
    load_case,
)

FILES = case_files()


def _params() -> list[Any]:
    out = []
    for path in FILES:
        marks = []
        try:
            bug = load_case(path).known_bug
        except Exception:  # a malformed case fails in the test itself, with its message
            bug = None
        if bug:
            marks.append(pytest.mark.xfail(strict=True, reason=f"known planner bug: {bug}"))
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def _show(plan: Plan) -> str:
    lines = ["actual plan:"]
    for a in plan.actions:
        lines.append(
            f"  {a.id} {a.op} {a.kind} {a.subject} dl={a.download_bytes} free={a.free_bytes} "
            f"reason={a.reason!r} code={a.reason_code} params={a.params.to_json()}"
        )
    lines += [f"  warning: {w}" for w in plan.warnings]
    lines += [f"  conflict: {c}" for c in plan.conflicts]
    lines += [f"  skipped: {s.id}: {s.reason}" for s in plan.skipped]
    lines += [f"  problem: {p.message} (model={p.model}, key={p.key})" for p in plan.problems]
    return "\n".join(lines)


def _action_mismatch(want: ExpectedAction, got: Action) -> list[str]:
    out = []
    if got.reason_code is None:
        out.append("no reason_code")
    if want.reason_code is not None and want.reason_code != got.reason_code:
        out.append(f"reason_code: expected {want.reason_code!r}, got {got.reason_code!r}")
    for name in ("id", "op", "kind", "subject", "download_bytes", "free_bytes"):
        if getattr(want, name) != getattr(got, name):
            out.append(f"{name}: expected {getattr(want, name)!r}, got {getattr(got, name)!r}")
    out += [
        f"reason {got.reason!r} lacks {phrase!r}"
        for phrase in want.reason_contains
        if phrase not in got.reason
    ]
    params = got.params.to_json()  # as plan JSON has them: lists, None left out
    for key, expected in want.params.items():
        actual = params.get(key)
        if actual != expected:
            out.append(f"param {key}: expected {expected!r}, got {actual!r}")
    return out


def _problem_mismatch(want: ExpectedProblem, got: PlanProblem) -> list[str]:
    out = [f"problem lacks {p!r}" for p in want.contains if p not in got.message]
    if want.check_model and (want.model, want.key) != (got.model, got.key):
        out.append(f"problem points at {(got.model, got.key)}, expected {(want.model, want.key)}")
    return out


def compare(case: Case, plan: Plan) -> list[str]:
    """Every difference between the case's expectation and the plan (empty: they agree)."""
    errors: list[str] = []
    if case.actions is not None:
        if len(case.actions) != len(plan.actions):
            errors.append(f"expected {len(case.actions)} actions, got {len(plan.actions)}")
        for i, (want, got) in enumerate(zip(case.actions, plan.actions, strict=False)):
            errors += [f"action {i} ({want.id}): {e}" for e in _action_mismatch(want, got)]
    if case.warnings is not None:
        if len(case.warnings) != len(plan.warnings):
            errors.append(f"expected {len(case.warnings)} warnings, got {len(plan.warnings)}")
        for i, (phrases, warning) in enumerate(zip(case.warnings, plan.warnings, strict=False)):
            errors += [f"warning {i} {warning!r} lacks {p!r}" for p in phrases if p not in warning]
    if case.conflicts is not None:
        if len(case.conflicts) != len(plan.conflicts):
            errors.append(f"expected {len(case.conflicts)} conflicts, got {len(plan.conflicts)}")
        for i, (phrases, conflict) in enumerate(zip(case.conflicts, plan.conflicts, strict=False)):
            errors += [
                f"conflict {i} {conflict!r} lacks {p!r}" for p in phrases if p not in conflict
            ]
    got_skips = [(s.id, s.reason) for s in plan.skipped]
    if [i for i, _ in case.skipped] != [i for i, _ in got_skips]:
        errors.append(f"skipped: expected {[i for i, _ in case.skipped]}, got {got_skips}")
    for (ident, phrases), (_, reason) in zip(case.skipped, got_skips, strict=False):
        errors += [f"skipped {ident} {reason!r} lacks {p!r}" for p in phrases if p not in reason]
    if len(case.problems) != len(plan.problems):
        errors.append(f"expected {len(case.problems)} problems, got {len(plan.problems)}")
    for i, (want_p, got_p) in enumerate(zip(case.problems, plan.problems, strict=False)):
        errors += [f"problem {i}: {e}" for e in _problem_mismatch(want_p, got_p)]
    return errors


def _plan(case: Case) -> Plan:
    return make_plan(
        case.spec,
        case.observed,
        case.facts,
        targets=case.targets,
        remote=case.remote,
        host=case.host,
    )


@pytest.mark.parametrize("path", _params())
def test_golden_plan(path: Path) -> None:
    case = load_case(path)
    plan = _plan(case)
    errors = compare(case, plan)
    assert not errors, f"{case.name}: {case.description}\n" + "\n".join(errors) + "\n" + _show(plan)
    # The same inputs give the same plan (no hidden state, no set-order dependence).
    assert _plan(case) == plan


def test_there_are_enough_cases_and_each_is_described() -> None:
    assert len(FILES) >= 40
    for path in FILES:
        case = load_case(path)
        assert case.description, path.name
        assert case.name == path.stem


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_case_specs_are_valid_mlx_yaml(path: Path) -> None:
    """Golden specs must pass the semantic rules too: a plan of an invalid file proves nothing."""
    case = load_case(path)
    env = Environment.from_mapping({"HOME": "/golden-home"})
    assert check(dict(case.spec_data), env, BASE_DIR) == []


def test_compare_reports_differences() -> None:
    """The comparison itself can fail: a wrong expectation is reported, not ignored."""
    case = load_case(FILES[0])
    plan = make_plan(case.spec, case.observed, case.facts, targets=case.targets, remote=case.remote)
    extra = Action("model/zz", "create", "ollama.pull", "ollama://zz:latest", None, 0, "x", "zz")
    broken = Plan((*plan.actions, extra), (*plan.warnings, "surprise"), plan.problems)
    errors = compare(case, broken)
    assert any("actions" in e for e in errors)
    assert any("warnings" in e for e in errors)


def test_golden_loader_checks_app_entries_and_compare_reports_conflicts(tmp_path: Path) -> None:
    case = load_case(CASES_DIR / "links-conflicts.yaml")
    assert len(case.conflicts or ()) == 4
    errors = compare(case, Plan((), conflicts=()))
    assert "expected 4 conflicts, got 0" in errors
    text = (CASES_DIR / "links-dangling-kept.yaml").read_text()
    for broken in (
        text.replace("kind: dangling", "kind: bogus", 1),
        text.replace(", target: /home/me/deleted.gguf", ""),
        text.replace("app: myapp,", "app: myapp, colour: red,", 1),
    ):
        bad = tmp_path / "bad.yaml"
        bad.write_text(broken)
        with pytest.raises(CaseError):
            load_case(bad)
