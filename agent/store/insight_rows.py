"""What ``Store.sync_insights`` changes, decided once for both stores.

An account's insights are written as a set: ``changes`` compares the set just computed with the
stored rows of the same scope (one account, or the rows about several accounts) and returns the
rows to insert and the updates to apply:

- a new key is inserted (``first_seen_at`` = now);
- a key still found is updated in place (statement, numbers, severity, evidence, ``updated_at``);
  it stays acknowledged unless it had been resolved (it came back: a new occurrence, seen anew
  and no longer acknowledged) or its severity rose (a warning that became critical asks again);
- a stored key not found any more is resolved (``resolved_at`` = now), once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.models import SEVERITY_RANK, NewInsight, StoredInsight

ACCOUNT_WIDE = "*"  # the account part of the key of an insight about several accounts


def insight_key(account_id: int | None, kind: str, subject: str) -> str:
    """The stable key: the account (or ``*``), the kind and the subject."""
    scope = ACCOUNT_WIDE if account_id is None else str(account_id)
    return f"{scope}:{kind}:{subject}"


def values_of(insight: NewInsight) -> dict[str, Any]:
    """The columns an insight sets, as computed."""
    return {
        "key": insight.key,
        "account_id": insight.account_id,
        "kind": insight.kind,
        "subject": insight.subject,
        "severity": insight.severity,
        "recommendation": insight.recommendation,
        "statement": insight.statement,
        "value": float(insight.value),
        "low": float(insight.low),
        "high": float(insight.high),
        "probability": float(insight.probability),
        "unit": insight.unit,
        "evidence": dict(insight.evidence),
    }


def changes(
    account_id: int | None,
    found: Sequence[NewInsight],
    stored: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
    """(rows to insert, (id, values) to update) that make ``stored`` (the scope's rows by key)
    hold ``found``. A found insight of another scope is refused (ValueError)."""
    inserts: list[dict[str, Any]] = []
    updates: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for insight in found:
        if insight.account_id != account_id:
            raise ValueError(
                f"insight {insight.key} is about account {insight.account_id}, not {account_id}"
            )
        if insight.key in seen:
            raise ValueError(f"insight {insight.key} found twice")
        seen.add(insight.key)
        values = values_of(insight)
        row = stored.get(insight.key)
        if row is None:
            inserts.append(values | {"first_seen_at": now, "updated_at": now})
            continue
        values["updated_at"] = now
        if row["resolved_at"] is not None:  # came back: a new occurrence
            values |= {"first_seen_at": now, "resolved_at": None, "acknowledged_at": None}
        elif SEVERITY_RANK.get(insight.severity, 9) < SEVERITY_RANK.get(row["severity"], 9):
            values["acknowledged_at"] = None  # it got worse: ask again
        updates.append((int(row["id"]), values))
    for key, row in stored.items():
        if key not in seen and row["resolved_at"] is None:
            updates.append((int(row["id"]), {"resolved_at": now, "updated_at": now}))
    return inserts, updates


def stored_insight(row: Mapping[str, Any], account: str | None) -> StoredInsight:
    """A :class:`StoredInsight` from a stored ``insights`` row (JSON decoded)."""
    return StoredInsight(
        id=int(row["id"]),
        key=str(row["key"]),
        account_id=row["account_id"],
        account=account,
        kind=str(row["kind"]),
        subject=str(row["subject"]),
        severity=str(row["severity"]),
        recommendation=bool(row["recommendation"]),
        statement=str(row["statement"]),
        value=float(row["value"]),
        low=float(row["low"]),
        high=float(row["high"]),
        probability=float(row["probability"]),
        unit=str(row["unit"]),
        evidence=dict(row["evidence"] or {}),
        first_seen_at=row["first_seen_at"],
        updated_at=row["updated_at"],
        resolved_at=row["resolved_at"],
        acknowledged_at=row["acknowledged_at"],
    )
