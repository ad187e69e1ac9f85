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
from mlxstate.hosts import Host, exclusion
from mlxstate.lock.model import LockEntry
from mlxstate.lock.use import locked_commits
from mlxstate.mlxyaml.models import Spec, WhenSpec
from mlxstate.plan.actions import Action, Plan, PlanProblem, Skipped
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
    host: Host | None = None,
    kept_commits: Mapping[str, str] | None = None,
) -> Plan:
    """Diff ``spec`` against ``observed`` (and the registry); no I/O. ``pins``: the mlx.lock
    entries to follow (``--locked``/``--frozen``), by model name. ``kept_commits``: HF
    commits an mlx.lock beside the file pins even when it is not followed (model name ->
    commit): never cleaned up as detached revisions. ``host``: the machine
    planned for; models and apps its ``when:`` leaves out are skipped (``None``: unknown, so
    every ``when:`` fails closed)."""
    cx = Context.build(spec, observed, facts, remote or {}, tuple(targets), pins)
    out = Draft()
    out.problems += [
        PlanProblem(f"--target {t}: no model named {t!r} in mlx.yaml")
        for t in targets
        if t not in spec.models
    ]
    skipped = _off_host(spec, host)
    off_host = frozenset(s.id for s in skipped)
    for name, model in spec.models.items():
        if f"model/{name}" not in off_host:
            plan_model(cx, out, name, model)
    # Skipped models stay declared (cx.declared): prune never touches them on this host.
    prune(cx, out)
    locked = locked_commits(cx.pins)  # found by commit: no ref names a locked snapshot
    links = plan_links(spec, observed, facts, out.actions, off_host, locked)
    # What the observers could not read (an unreadable manifest, a bad app folder) decides
    # what the plan can see: say so here too, not only in `mlx status`.
    out.warnings += [*observed.ollama.warnings, *observed.hf.warnings, *links.warnings]
    actions = out.actions + list(links.actions) + _housekeeping(cx, out, kept_commits or {})
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
        skipped=tuple(s for s in skipped if not targets or s.id in {f"model/{t}" for t in targets}),
    )


def _off_host(spec: Spec, host: Host | None) -> list[Skipped]:
    """One entry per model and app whose ``when:`` does not let it on ``host``."""

    def reason(when: WhenSpec | None) -> str | None:
        if when is None:
            return None
        return "this host is unknown" if host is None else exclusion(when, host)

    out = [
        Skipped(f"model/{name}", str(m.parsed_source), why)
        for name, m in spec.models.items()
        if (why := reason(m.when)) is not None
    ]
    out += [
        Skipped(f"app/{name}", str(a.path), why)
        for name, a in spec.apps.items()
        if (why := reason(a.when)) is not None
    ]
    return out


def _housekeeping(cx: Context, out: Draft, kept: Mapping[str, str]) -> list[Action]:
    """Cleanups and dedups: whole-machine tidying, left out of a partial (--target) plan."""
    if cx.targets:
        return []
    locked = {**kept, **locked_commits(cx.pins)}
    cleanups = plan_cleanups(cx.spec, cx.observed, locked=locked)
    done = frozenset((str(d.path), str(d.canonical)) for d in cx.facts.dedups)
    dedups, dedup_warnings = plan_dedup(cx.spec, cx.observed, done)
    out.warnings += dedup_warnings
    return cleanups + dedups
