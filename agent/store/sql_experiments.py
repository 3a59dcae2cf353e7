"""The SQL store's planned experiments (agent/experiments.py): experiments with their variants,
status changes, assignments of posts to variants and promotions. A part of
:class:`agent.store.sql.SqlStore`; rows are converted and transitions decided by
:mod:`agent.store.experiment_rows`, once for both stores.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import Assignment, Experiment, ExperimentStatus, NewExperiment
from agent.store import experiment_rows as rows
from agent.store.schema import (
    experiment_assignments,
    experiment_variants,
    experiments,
    learning_updates,
)
from agent.store.sql_state import SqlState

E, V, A = experiments, experiment_variants, experiment_assignments


async def _load(conn: AsyncConnection, query: sa.Select[Any]) -> list[Experiment]:
    found = [dict(r) for r in (await conn.execute(query.order_by(E.c.id))).mappings().all()]
    if not found:
        return []
    ids = [r["id"] for r in found]
    variants: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for v in (await conn.execute(sa.select(V).where(V.c.experiment_id.in_(ids)))).mappings():
        variants[v["experiment_id"]].append(dict(v))
    return [rows.experiment_of(r, variants[r["id"]]) for r in found]


class SqlExperiments(SqlState):
    """Experiments, variants, assignments and promotions, in SQL."""

    async def create_experiment(self, new: NewExperiment, *, now: datetime) -> Experiment:
        """Store a new experiment (a draft) with its variants, in one transaction."""
        rows.check_variants(new)

        async def go(conn: AsyncConnection) -> Experiment:
            experiment_id = await conn.scalar(
                E.insert().values(rows.experiment_values(new, now)).returning(E.c.id)
            )
            assert experiment_id is not None
            await conn.execute(
                V.insert(), [rows.variant_values(experiment_id, v) for v in new.variants]
            )
            (found,) = await _load(conn, sa.select(E).where(E.c.id == experiment_id))
            return found

        return await self._run(go)

    async def experiments(
        self, *, account_id: int | None = None, statuses: Collection[ExperimentStatus] = ()
    ) -> list[Experiment]:
        """The experiments (one account's, or every one), with these statuses (all when
        empty), by id."""
        query = sa.select(E)
        if account_id is not None:
            query = query.where(E.c.account_id == account_id)
        if statuses:
            query = query.where(E.c.status.in_([s.value for s in statuses]))

        async def go(conn: AsyncConnection) -> list[Experiment]:
            return await _load(conn, query)

        return await self._run(go)

    async def get_experiment(self, experiment_id: int) -> Experiment | None:
        async def go(conn: AsyncConnection) -> list[Experiment]:
            return await _load(conn, sa.select(E).where(E.c.id == experiment_id))

        found = await self._run(go)
        return found[0] if found else None

    async def set_experiment_status(
        self,
        experiment_id: int,
        *,
        expected: Collection[ExperimentStatus],
        status: ExperimentStatus,
        now: datetime,
        winner: str | None = None,
        decision: str | None = None,
        reason: str | None = None,
        evidence: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move the experiment to ``status`` if its status is one of ``expected``; False
        otherwise (or when there is no such experiment)."""
        values = rows.status_values(
            status, now, winner=winner, decision=decision, reason=reason, evidence=evidence
        )
        query = (
            E.update()
            .where(E.c.id == experiment_id, E.c.status.in_([s.value for s in expected]))
            .values(values)
        )

        async def go(conn: AsyncConnection) -> bool:
            return bool((await conn.execute(query)).rowcount)

        return await self._run(go)

    async def save_experiment_state(
        self, experiment_id: int, state: Mapping[str, Any], *, now: datetime
    ) -> None:
        """Keep what the stop rules carry between evaluations (the running p-values)."""
        query = E.update().where(E.c.id == experiment_id).values(state=dict(state), updated_at=now)

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(query)

        await self._run(go)

    async def stop_variant(
        self, experiment_id: int, name: str, *, reason: str, now: datetime
    ) -> bool:
        """Stop assigning posts to one variant (a poor performer); False when it is unknown or
        already stopped."""
        query = (
            V.update()
            .where(V.c.experiment_id == experiment_id, V.c.name == name, V.c.stopped_at.is_(None))
            .values(stopped_at=now, stopped_reason=reason)
        )

        async def go(conn: AsyncConnection) -> bool:
            return bool((await conn.execute(query)).rowcount)

        return await self._run(go)

    async def assign_variant(
        self, experiment_id: int, variant_id: int, *, seq: int, now: datetime
    ) -> Assignment:
        """Record that the experiment's post number ``seq`` gets the variant (before it is
        written); a ``seq`` taken already is refused (ConstraintViolation)."""
        values = {
            "experiment_id": experiment_id,
            "variant_id": variant_id,
            "seq": seq,
            "created_at": now,
        }

        async def go(conn: AsyncConnection) -> Assignment:
            row = (await conn.execute(A.insert().values(values).returning(*A.c))).mappings().one()
            return rows.assignment_of(dict(row))

        return await self._run(go)

    async def link_assignment(self, assignment_id: int, content_id: int) -> None:
        """The stored post of an assignment (a redraft's replaces the refused draft's)."""
        query = A.update().where(A.c.id == assignment_id).values(content_id=content_id)

        async def go(conn: AsyncConnection) -> None:
            await conn.execute(query)

        await self._run(go)

    async def assignments(self, experiment_id: int) -> list[Assignment]:
        """The experiment's assignments, by ``seq``."""
        query = sa.select(A).where(A.c.experiment_id == experiment_id).order_by(A.c.seq)

        async def go(conn: AsyncConnection) -> list[Assignment]:
            return [rows.assignment_of(dict(r)) for r in (await conn.execute(query)).mappings()]

        return await self._run(go)

    async def experiment_accounts(self) -> set[int]:
        """The accounts with a running experiment or a promotion in force: the only ones whose
        plans look at experiments."""
        query = sa.select(E.c.account_id).where(
            sa.or_(
                E.c.status == ExperimentStatus.RUNNING.value,
                sa.and_(E.c.promoted_at.is_not(None), E.c.promotion_undone_at.is_(None)),
            )
        )

        async def go(conn: AsyncConnection) -> set[int]:
            return {int(r) for r in (await conn.execute(query)).scalars()}

        return await self._run(go)

    async def record_promotion(
        self,
        experiment_id: int,
        *,
        undo: bool,
        evidence: Mapping[str, Any],
        updates_applied: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        """Mark the experiment's winner promoted (or the promotion undone) and write its
        ``learning_updates`` row, at once; False when it cannot be (see
        :func:`agent.store.experiment_rows.may_promote`)."""

        async def go(conn: AsyncConnection) -> bool:
            query = sa.select(E).where(E.c.id == experiment_id).with_for_update()
            found = (await conn.execute(query)).mappings().one_or_none()
            row = None if found is None else dict(found)
            if row is None or not rows.may_promote(row, undo):
                return False
            await conn.execute(
                E.update().where(E.c.id == experiment_id).values(rows.promotion_values(undo, now))
            )
            update = rows.promotion_update(
                row, undo=undo, evidence=evidence, updates_applied=updates_applied, now=now
            )
            await conn.execute(learning_updates.insert().values(update))
            return True

        return await self._run(go)
