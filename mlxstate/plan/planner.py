"""The planner: a pure function of (spec, observed state, registry facts) → Plan.

No I/O here — observers collected every fact first (observers never decide, the planner
never reads). Rules (docs/apply.md, "What mlx deletes — and never deletes"):

- declared and absent → create (``ollama.pull`` / ``hf.download``); ``file://`` sources are
  only checked: a missing path is a plan problem, never an action;
- present but broken (missing or short blob, dangling snapshot link, files the hub listing
  and include/exclude say should be there) → update (repair);
- an HF revision that is not cached (a pinned commit, a branch not fetched, or — with remote
  facts from ``--refresh`` — a branch whose hub head moved) → update, old → new in the reason;
- with mlx.lock in use (``--locked``/``--frozen``): HF models target the locked commit and
  Ollama models the locked manifest; an installed one that differs → update ("observed
  differs from the lock");
- ``ensure: absent`` → delete, managed or not; ``prune: true`` → delete MANAGED undeclared
  models only; a managed name now declared with another source → replace (with prune);
- ``protect: true`` on anything the plan would delete or replace → problem;
- ``disk.min_free`` against known download sizes per filesystem → problem with the numbers.

Where each rule lives: ``models.py`` (the per-model diff), ``ownership.py`` and ``prune.py``
(claims, releases, forgets, deletes, replaces), ``links.py``, ``cleanup.py``, ``dedup.py``,
``order.py`` (order and what deletes free), ``checks.py`` (whole-plan checks) and
``fingerprint.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlxstate.facts import Observed, RemoteRepo
from mlxstate.lock.model import LockEntry
from mlxstate.mlxyaml.models import Spec
from mlxstate.plan.actions import Action, Plan, PlanProblem
from mlxstate.plan.checks import check_min_free, check_protected
from mlxstate.plan.cleanup import plan_cleanups
from mlxstate.plan.context import Context, Draft
from mlxstate.plan.dedup import plan_dedup
from mlxstate.plan.links import plan_links
from mlxstate.plan.models import plan_model
from mlxstate.plan.order import exclusive_ollama_frees, order_key, unknown_size_warnings
from mlxstate.plan.prune import prune
from mlxstate.registry import RegistryFacts

__all__ = ["make_plan"]


def make_plan(
    spec: Spec,
    observed: Observed,
    facts: RegistryFacts,
    *,
    targets: Sequence[str] = (),
    remote: Mapping[tuple[str, str], RemoteRepo] | None = None,
    pins: Mapping[str, LockEntry] | None = None,
) -> Plan:
    """Diff ``spec`` against ``observed`` (and the registry); no I/O. ``pins``: the mlx.lock
    entries to follow (``--locked``/``--frozen``), by model name."""
    cx = Context.build(spec, observed, facts, remote or {}, tuple(targets), pins)
    out = Draft()
    out.problems += [
        PlanProblem(f"--target {t}: no model named {t!r} in mlx.yaml")
        for t in targets
        if t not in spec.models
    ]
    for name, model in spec.models.items():
        plan_model(cx, out, name, model)
    prune(cx, out)
    links = plan_links(spec, observed, facts, out.actions)
    # What the observers could not read (an unreadable manifest, a bad app folder) decides
    # what the plan can see: say so here too, not only in `mlx status`.
    out.warnings += [*observed.ollama.warnings, *observed.hf.warnings, *links.warnings]
    actions = out.actions + list(links.actions) + _housekeeping(cx, out)
    if targets:
        actions = [a for a in actions if a.model in targets]
        out.warnings.insert(
            0, f"partial plan: only {', '.join(targets)} (--target); other changes are not shown"
        )
    out.actions = exclusive_ollama_frees(sorted(actions, key=order_key), observed)
    check_protected(cx, out)
    check_min_free(cx, out)
    out.warnings += unknown_size_warnings(out.actions)
    return Plan(
        tuple(out.actions),
        tuple(out.warnings),
        tuple(out.problems),
        bool(targets),
        conflicts=links.conflicts,
    )


def _housekeeping(cx: Context, out: Draft) -> list[Action]:
    """Cleanups and dedups: whole-machine tidying, left out of a partial (--target) plan."""
    if cx.targets:
        return []
    cleanups = plan_cleanups(cx.spec, cx.observed)
    done = frozenset((str(d.path), str(d.canonical)) for d in cx.facts.dedups)
    dedups, dedup_warnings = plan_dedup(cx.spec, cx.observed, done)
    out.warnings += dedup_warnings
    return cleanups + dedups
