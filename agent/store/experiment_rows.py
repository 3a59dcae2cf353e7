"""Experiment rows and value objects, converted once for both stores (the SQL store's
:mod:`agent.store.sql_experiments` and the memory store's :mod:`agent.store.memory_experiments`),
and the transitions they both apply.

An experiment's status moves draft -> running -> stopped | completed, compare-and-set (the
statuses it may move from are checked in the same transaction). A promotion is recorded on the
experiment (``promoted_at``; ``promotion_undone_at`` when undone) together with its
``learning_updates`` row, so what was promoted, from which evidence, is in the learning history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.models import (
    Assignment,
    Experiment,
    ExperimentStatus,
    NewExperiment,
    NewVariant,
    Variant,
)

PROMOTION = "experiment_promotion"  # learning_updates.update_type of a promotion
PROMOTION_UNDONE = "experiment_promotion_undone"  # and of its undoing
ENDED = (ExperimentStatus.STOPPED, ExperimentStatus.COMPLETED)


def experiment_values(new: NewExperiment, now: datetime) -> dict[str, Any]:
    """The ``experiments`` row of a new experiment (a draft)."""
    return {
        "account_id": new.account_id,
        "name": new.name,
        "hypothesis": new.hypothesis,
        "dimension": new.dimension,
        "metric": new.metric,
        "mde": float(new.mde),
        "alpha": float(new.alpha),
        "power": float(new.power),
        "baseline_mean": float(new.baseline_mean),
        "baseline_sd": float(new.baseline_sd),
        "max_posts_per_variant": int(new.max_posts_per_variant),
        "max_days": float(new.max_days),
        "block_size": int(new.block_size),
        "seed": int(new.seed),
        "stop_rules": dict(new.stop_rules),
        "status": ExperimentStatus.DRAFT.value,
        "evidence": {},
        "state": {},
        "created_at": now,
        "updated_at": now,
    }


def variant_values(experiment_id: int, variant: NewVariant) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id,
        "name": variant.name,
        "value": variant.value,
        "control": bool(variant.control),
    }


def check_variants(new: NewExperiment) -> None:
    """At least two variants, distinct names: refused (ValueError) otherwise."""
    names = [v.name for v in new.variants]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError("an experiment needs two or more variants with distinct names")


def variant_of(row: Mapping[str, Any]) -> Variant:
    return Variant(
        id=int(row["id"]),
        name=str(row["name"]),
        value=str(row["value"]),
        control=bool(row["control"]),
        stopped_at=row["stopped_at"],
        stopped_reason=row["stopped_reason"],
    )


def experiment_of(row: Mapping[str, Any], variants: Sequence[Mapping[str, Any]]) -> Experiment:
    """An :class:`Experiment` from its row and its variants' rows (JSON decoded)."""
    stored = sorted((variant_of(v) for v in variants), key=lambda v: v.id)
    plan = NewExperiment(
        account_id=int(row["account_id"]),
        name=str(row["name"]),
        hypothesis=str(row["hypothesis"]),
        dimension=str(row["dimension"]),
        metric=str(row["metric"]),
        mde=float(row["mde"]),
        alpha=float(row["alpha"]),
        power=float(row["power"]),
        baseline_mean=float(row["baseline_mean"]),
        baseline_sd=float(row["baseline_sd"]),
        max_posts_per_variant=int(row["max_posts_per_variant"]),
        max_days=float(row["max_days"]),
        block_size=int(row["block_size"]),
        seed=int(row["seed"]),
        stop_rules=dict(row["stop_rules"] or {}),
        variants=tuple(NewVariant(name=v.name, value=v.value, control=v.control) for v in stored),
    )
    return Experiment(
        id=int(row["id"]),
        plan=plan,
        variants=tuple(stored),
        status=ExperimentStatus(row["status"]),
        winner=row["winner"],
        decision=row["decision"],
        reason=row["reason"],
        evidence=dict(row["evidence"] or {}),
        state=dict(row["state"] or {}),
        created_at=row["created_at"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        promoted_at=row["promoted_at"],
        promotion_undone_at=row["promotion_undone_at"],
    )


def assignment_of(row: Mapping[str, Any]) -> Assignment:
    return Assignment(
        id=int(row["id"]),
        experiment_id=int(row["experiment_id"]),
        variant_id=int(row["variant_id"]),
        seq=int(row["seq"]),
        content_id=row["content_id"],
        created_at=row["created_at"],
    )


def status_values(
    status: ExperimentStatus,
    now: datetime,
    *,
    winner: str | None,
    decision: str | None,
    reason: str | None,
    evidence: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The columns a status change sets."""
    values: dict[str, Any] = {"status": status.value, "updated_at": now}
    if status is ExperimentStatus.RUNNING:
        values["started_at"] = now
    if status in ENDED:
        values |= {"stopped_at": now, "winner": winner, "decision": decision, "reason": reason}
        if evidence is not None:
            values["evidence"] = dict(evidence)
    return values


def may_promote(row: Mapping[str, Any], undo: bool) -> bool:
    """A promotion needs an ended experiment with a winner, not promoted now; undoing one needs
    a promotion in force."""
    promoted = row["promoted_at"] is not None and row["promotion_undone_at"] is None
    if undo:
        return promoted
    return row["status"] in {s.value for s in ENDED} and row["winner"] is not None and not promoted


def promotion_values(undo: bool, now: datetime) -> dict[str, Any]:
    if undo:
        return {"promotion_undone_at": now, "updated_at": now}
    return {"promoted_at": now, "promotion_undone_at": None, "updated_at": now}


def promotion_update(
    row: Mapping[str, Any],
    *,
    undo: bool,
    evidence: Mapping[str, Any],
    updates_applied: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The ``learning_updates`` row recording a promotion (or its undoing)."""
    return {
        "account_id": row["account_id"],
        "content_id": None,
        "created_at": now,
        "update_type": PROMOTION_UNDONE if undo else PROMOTION,
        "component": str(row["dimension"])[:32],
        "evidence": {"experiment_id": int(row["id"]), **evidence},
        "updates_applied": dict(updates_applied),
        "insights_summary": {"winner": row["winner"], "decision": row["decision"]},
    }
