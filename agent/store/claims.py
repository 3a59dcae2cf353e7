"""Several workers on one database: claiming due snapshots, and named leases with expiry.

Each function takes an open :class:`~sqlalchemy.ext.asyncio.AsyncConnection` inside the
transaction :class:`agent.store.sql.SqlStore` runs it in, and is exposed as the Store's method of
the same name.

- **Claims.** A due, untaken snapshot is marked ``claimed_by`` a worker ``claimed_until`` a time;
  only that worker takes it until then. On PostgreSQL the rows are picked with ``SELECT ... FOR
  UPDATE SKIP LOCKED`` in a CTE and marked by the ``UPDATE ... RETURNING`` of the same statement,
  so concurrent claimers get disjoint sets without waiting for each other; on SQLite (one process,
  see :mod:`agent.store.lockfile`) the single ``UPDATE`` statement is atomic by itself. A worker
  that dies stops renewing: its claims expire and another worker takes them. A worker may claim
  its own unexpired claims again (the snapshots it could not take on its last try).
- **Leases.** ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the lease is ours or has expired:
  one statement, so two workers can never both hold an unexpired lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.models import DueSnapshot
from agent.store.schema import content, leases, performance_snapshots


async def claim_snapshots(
    conn: AsyncConnection, now: datetime, *, worker: str, lease: timedelta, limit: int
) -> list[DueSnapshot]:
    """Claim up to ``limit`` due, untaken snapshots for ``worker`` until ``now + lease``."""
    ps = performance_snapshots
    claimable = sa.or_(
        ps.c.claimed_until.is_(None), ps.c.claimed_until < now, ps.c.claimed_by == worker
    )
    picked = (
        sa.select(ps.c.id)
        .where(ps.c.taken_at.is_(None), ps.c.due_at <= now, claimable)
        .order_by(ps.c.due_at, ps.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # not rendered on SQLite
        .cte("picked")
    )
    claimed = await conn.execute(
        sa.update(ps)
        .where(ps.c.id.in_(sa.select(picked.c.id)))
        .values(claimed_by=worker, claimed_until=now + lease)
        .returning(ps.c.id)
        .add_cte(picked)
    )
    ids = [row.id for row in claimed]
    if not ids:
        return []
    rows = await conn.execute(
        sa.select(
            ps.c.id,
            ps.c.content_id,
            ps.c.horizon_hours,
            ps.c.due_at,
            content.c.account_id,
            content.c.platform_post_id,
            content.c.posted_at,
        )
        .join(content, content.c.id == ps.c.content_id)
        .where(ps.c.id.in_(ids))
        .order_by(ps.c.due_at, ps.c.id)
    )
    return [
        DueSnapshot(
            id=r.id,
            content_id=r.content_id,
            account_id=r.account_id,
            platform_post_id=r.platform_post_id,
            posted_at=r.posted_at,
            horizon_hours=r.horizon_hours,
            due_at=r.due_at,
        )
        for r in rows
    ]


def _lease_upsert(insert: Any) -> sa.Executable:
    """The upsert that takes, renews or takes over a lease (built once per dialect: the plan
    cycle of a worker sharing the store takes one per account planned)."""
    now: sa.BindParameter[datetime] = sa.bindparam("lease_now", type_=leases.c.expires_at.type)
    statement = insert(leases).values(
        name=sa.bindparam("lease_name"),
        holder=sa.bindparam("lease_holder"),
        expires_at=sa.bindparam("lease_expires"),
        acquired_at=now,
    )
    ours = leases.c.holder == statement.excluded.holder
    upsert: sa.Executable = statement.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "holder": statement.excluded.holder,
            "expires_at": statement.excluded.expires_at,
            # a renewal keeps the time it was first acquired
            "acquired_at": sa.case(
                (ours, leases.c.acquired_at), else_=statement.excluded.acquired_at
            ),
        },
        where=sa.or_(ours, leases.c.expires_at < now),
    ).returning(leases.c.name)
    return upsert


_ACQUIRE_LEASE = {
    "sqlite": _lease_upsert(sqlite_insert),
    "postgresql": _lease_upsert(postgresql_insert),
}
_RELEASE_LEASE = leases.delete().where(
    leases.c.name == sa.bindparam("lease_name"), leases.c.holder == sa.bindparam("lease_holder")
)
_RELEASE_LEASES = leases.delete().where(
    leases.c.name.in_(sa.bindparam("lease_names", expanding=True)),
    leases.c.holder == sa.bindparam("lease_holder"),
)
# names per statement: far below PostgreSQL's 32,767 bound parameters (four per lease upserted)
LEASE_CHUNK = 1000


def acquire_lease(
    conn: Connection, name: str, *, worker: str, now: datetime, ttl: timedelta
) -> bool:
    """Take, renew or take over the lease ``name``; False while another worker holds it."""
    values = {
        "lease_name": name,
        "lease_holder": worker,
        "lease_expires": now + ttl,
        "lease_now": now,
    }
    dialect = "sqlite" if conn.dialect.name == "sqlite" else "postgresql"
    return conn.execute(_ACQUIRE_LEASE[dialect], values).first() is not None


def acquire_leases(
    conn: Connection, names: Sequence[str], *, worker: str, now: datetime, ttl: timedelta
) -> set[str]:
    """:func:`acquire_lease` for every name, returning the names now held by ``worker``. On
    PostgreSQL one multi-row upsert per ``LEASE_CHUNK`` names (SQLAlchemy's "insertmanyvalues"
    executemany); SQLite (in-process, where that rewrite misplaces the ``ON CONFLICT`` clause's
    parameter) runs the one-row upsert per name in the same transaction."""
    unique = sorted(set(names))  # one order for every worker: no deadlock between two batches
    if conn.dialect.name == "sqlite":
        return {
            name for name in unique if acquire_lease(conn, name, worker=worker, now=now, ttl=ttl)
        }
    dialect = "postgresql"
    held: set[str] = set()
    for start in range(0, len(unique), LEASE_CHUNK):
        rows = [
            {
                "lease_name": name,
                "lease_holder": worker,
                "lease_expires": now + ttl,
                "lease_now": now,
            }
            for name in unique[start : start + LEASE_CHUNK]
        ]
        held.update(row[0] for row in conn.execute(_ACQUIRE_LEASE[dialect], rows))
    return held


def release_leases(conn: Connection, names: Sequence[str], *, worker: str) -> None:
    """:func:`release_lease` for every name, one statement per ``LEASE_CHUNK`` names."""
    unique = sorted(set(names))
    for start in range(0, len(unique), LEASE_CHUNK):
        conn.execute(
            _RELEASE_LEASES,
            {"lease_names": unique[start : start + LEASE_CHUNK], "lease_holder": worker},
        )


def release_lease(conn: Connection, name: str, *, worker: str) -> None:
    """Give the lease up, if ``worker`` holds it (anyone else's lease is left alone)."""
    conn.execute(_RELEASE_LEASE, {"lease_name": name, "lease_holder": worker})
