"""The memory store's planned experiments, as :mod:`agent.store.sql_experiments` keeps them
(rows converted and transitions decided by :mod:`agent.store.experiment_rows` for both). A part
of :class:`agent.store.memory.MemoryStore`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from agent.models import Assignment, Experiment, ExperimentStatus, NewExperiment
from agent.store import experiment_rows as rows
from agent.store.memory_state import MemoryState
from agent.store.memory_tables import TABLES, exported, refused, utc


class MemoryExperiments(MemoryState):
    """Experiments, variants, assignments and promotions, in memory."""

    def _experiment(self, experiment_id: int) -> Experiment | None:
        row = self._rows["experiments"].get(experiment_id)
        if row is None:
            return None
        variants = [
            exported("experiment_variants", v)
            for v in self._rows["experiment_variants"].values()
            if v["experiment_id"] == experiment_id
        ]
        return rows.experiment_of(exported("experiments", row), variants)

    async def create_experiment(self, new: NewExperiment, *, now: datetime) -> Experiment:
        rows.check_variants(new)
        self._account(new.account_id, "experiments")
        row = self._insert(
            "experiments", TABLES["experiments"].row(rows.experiment_values(new, now))
        )
        for variant in new.variants:
            values = rows.variant_values(row["id"], variant)
            self._insert("experiment_variants", TABLES["experiment_variants"].row(values))
        found = self._experiment(row["id"])
        assert found is not None
        return found

    async def experiments(
        self, *, account_id: int | None = None, statuses: Collection[ExperimentStatus] = ()
    ) -> list[Experiment]:
        wanted = {s.value for s in statuses}
        out = []
        for experiment_id, row in sorted(self._rows["experiments"].items()):
            if account_id is not None and row["account_id"] != account_id:
                continue
            if wanted and row["status"] not in wanted:
                continue
            found = self._experiment(experiment_id)
            assert found is not None
            out.append(found)
        return out

    async def get_experiment(self, experiment_id: int) -> Experiment | None:
        return self._experiment(experiment_id)

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
        row = self._rows["experiments"].get(experiment_id)
        if row is None or row["status"] not in {s.value for s in expected}:
            return False
        values = rows.status_values(
            status, utc(now), winner=winner, decision=decision, reason=reason, evidence=evidence
        )
        table = TABLES["experiments"]
        self._rows["experiments"][experiment_id] = table.row(
            {**exported("experiments", row), **values}
        )
        return True

    async def save_experiment_state(
        self, experiment_id: int, state: Mapping[str, Any], *, now: datetime
    ) -> None:
        row = self._rows["experiments"].get(experiment_id)
        if row is None:
            return
        values = {"state": dict(state), "updated_at": now}
        self._rows["experiments"][experiment_id] = TABLES["experiments"].row(
            {**exported("experiments", row), **values}
        )

    async def stop_variant(
        self, experiment_id: int, name: str, *, reason: str, now: datetime
    ) -> bool:
        for row in self._rows["experiment_variants"].values():
            if row["experiment_id"] == experiment_id and row["name"] == name:
                if row["stopped_at"] is not None:
                    return False
                row.update(stopped_at=utc(now), stopped_reason=reason)
                return True
        return False

    async def assign_variant(
        self, experiment_id: int, variant_id: int, *, seq: int, now: datetime
    ) -> Assignment:
        if experiment_id not in self._rows["experiments"]:
            raise refused(f"FOREIGN KEY constraint failed: experiment_id = {experiment_id}")
        if variant_id not in self._rows["experiment_variants"]:
            raise refused(f"FOREIGN KEY constraint failed: variant_id = {variant_id}")
        for row in self._rows["experiment_assignments"].values():
            if row["experiment_id"] == experiment_id and row["seq"] == seq:
                raise refused("UNIQUE constraint failed: experiment_assignments.seq")
        values = {
            "experiment_id": experiment_id,
            "variant_id": variant_id,
            "seq": seq,
            "created_at": now,
        }
        row = self._insert("experiment_assignments", TABLES["experiment_assignments"].row(values))
        return rows.assignment_of(row)

    async def link_assignment(self, assignment_id: int, content_id: int) -> None:
        row = self._rows["experiment_assignments"].get(assignment_id)
        if row is None:
            return
        if self._content_row(content_id) is None:
            raise refused(f"FOREIGN KEY constraint failed: content_id = {content_id}")
        row["content_id"] = content_id

    async def assignments(self, experiment_id: int) -> list[Assignment]:
        found = [
            rows.assignment_of(r)
            for r in self._rows["experiment_assignments"].values()
            if r["experiment_id"] == experiment_id
        ]
        return sorted(found, key=lambda a: a.seq)

    async def experiment_accounts(self) -> set[int]:
        return {
            int(r["account_id"])
            for r in self._rows["experiments"].values()
            if r["status"] == ExperimentStatus.RUNNING.value
            or (r["promoted_at"] is not None and r["promotion_undone_at"] is None)
        }

    async def record_promotion(
        self,
        experiment_id: int,
        *,
        undo: bool,
        evidence: Mapping[str, Any],
        updates_applied: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        row = self._rows["experiments"].get(experiment_id)
        if row is None or not rows.may_promote(row, undo):
            return False
        now = utc(now)
        update = rows.promotion_update(
            exported("experiments", row),
            undo=undo,
            evidence=evidence,
            updates_applied=updates_applied,
            now=now,
        )
        new_update = TABLES["learning_updates"].row(update)
        row.update(rows.promotion_values(undo, now))
        self._insert("learning_updates", new_update)
        return True
