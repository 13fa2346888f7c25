"""The demo chapter of data quality: one customer, three systems, one golden record.

Generates Czech/Slovak companies as exported from the CRM, the ERP and the PM tool, with
known duplicates (typos, legal-form variants, missing diacritics, branches sharing an
IČO), loads them into the quality store the way ``spojka quality load`` does, and tells
what the matcher made of them, checked against the generator's truth.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from spojka.core.db import transaction
from spojka.quality import service
from spojka.quality.clustering import IncrementalMatch, MatchIndex
from spojka.quality.generator import generate_companies
from spojka.quality.matching import Prepared
from spojka.quality.models import QualityCluster, QualityRecord
from spojka.quality.validate import summarize

if TYPE_CHECKING:
    from spojka.demo import DemoContext

#: rows the chapter generates: enough for every kind of duplicate, quick to load
DEMO_RECORDS = 800
DEMO_SEED = 3
#: generator column → canonical account field
_COLUMNS = {
    "name": "name",
    "ico": "ico",
    "dic": "dic",
    "email": "email",
    "phone": "phone",
    "web": "domain",
    "street": "street",
    "city": "city",
    "zip": "zip",
    "country": "country",
}
_SYSTEM_LABEL = {"crm": "CRM", "erp": "ERP", "pm": "PM"}


class _CountingIndex(MatchIndex):
    """The matching index, also counting the candidate pairs it scores."""

    compared = 0

    def _match_prepared(self, p: Prepared, *, explain: bool = True) -> IncrementalMatch:
        self.compared += sum(
            1 for pos in self.blocking.candidates(p) if self.records[pos].record_id != p.record_id
        )
        return super()._match_prepared(p, explain=explain)


def _pairs(groups: Counter[Any]) -> int:
    return sum(n * (n - 1) // 2 for n in groups.values())


def _label(system: str) -> str:
    return _SYSTEM_LABEL.get(system, system)


def quality_chapter(ctx: DemoContext) -> None:
    """Duplicates across CRM, ERP and PM become golden records with lineage."""
    out = ctx.console
    rows = generate_companies(DEMO_RECORDS, seed=DEMO_SEED)
    run = secrets.token_hex(3)
    truth = {f"demo-{run}-{row['id']}": row["entity_id"] for row in rows}
    per_system = Counter(row["system"] for row in rows)
    ico_owners: dict[str, set[str]] = {}
    for row in rows:
        digits = "".join(ch for ch in row["ico"] if ch.isdigit()).zfill(8)
        if row["ico"]:
            ico_owners.setdefault(digits, set()).add(row["entity_id"])
    branches = sum(len(owners) - 1 for owners in ico_owners.values())
    started = time.perf_counter()
    decisions: Counter[str] = Counter()
    with transaction(ctx.app.sessions) as db:
        # each run tells its story on its own batch: an earlier demo run's records stay
        # stored, but are not matched against (they would absorb the new batch)
        index = _CountingIndex("account")
        for row in rows:
            day = date.fromisoformat(row["updated_at"])
            outcome = service.ingest(
                db_session=db,
                entity="account",
                system=row["system"],
                external_id=f"demo-{run}-{row['id']}",
                values={field: row.get(column) for column, field in _COLUMNS.items()},
                updated_at=datetime(day.year, day.month, day.day, tzinfo=UTC),
                index=index,
            )
            decisions[outcome.decision] += 1
        mine = list(
            db.scalars(sa.select(QualityRecord).where(QualityRecord.external_id.in_(list(truth))))
        )
        groups = Counter(str(r.cluster_id) for r in mine)
        found = _pairs(groups)
        true = _pairs(Counter(truth.values()))
        hits = _pairs(Counter((str(r.cluster_id), truth[r.external_id]) for r in mine))
        by_id = {r.id: r for r in mine}
        reviews = [
            (review, left, right)
            for review, left, right in service.open_reviews(
                db_session=db, entity="account", limit=10_000
            )
            if left.id in by_id and right.id in by_id
        ]
        example = _golden_example(db, groups)
        scores = summarize(
            r
            for r in service.scored_records(db_session=db, entity="account")
            if r.record_id.split(":", 1)[1] in truth
        )
    seconds = time.perf_counter() - started

    systems = ", ".join(f"{_label(s)} {n}" for s, n in sorted(per_system.items()))
    out.print(
        f"  {len(rows)} company records ({systems}) of {len(set(truth.values()))} companies",
        highlight=False,
    )
    out.print(
        f"  {branches} branches share an IČO with their parent; {true} true duplicate pairs",
        highlight=False,
    )
    out.print(
        f"  loaded and matched in {seconds:.1f} s: {index.compared} candidate pairs scored "
        f"→ {len(groups)} clusters",
        highlight=False,
    )
    out.print(
        f"  {decisions['merge']} records auto-merged, {len(reviews)} candidate "
        f"pair{'' if len(reviews) == 1 else 's'} waiting for review",
        highlight=False,
    )
    precision = hits / found if found else 1.0
    recall = hits / true if true else 1.0
    out.print(
        f"  vs known truth (auto-merges only): pairwise precision {precision:.1%}, "
        f"recall {recall:.1%}",
        highlight=False,
    )
    if example is not None:
        cluster, members = example
        out.print(
            f"  golden record from {len(members)} records "
            f"({', '.join(_label(m.system) for m in members)}):",
            highlight=False,
        )
        for name in ("name", "ico", "phone"):
            item = cluster.lineage.get(name)
            if item:
                out.print(
                    f"    {name:<5} {item['value']!s:<34} ← {_label(item['system'])} "
                    f"({item['rule']})",
                    highlight=False,
                )
    if reviews:
        review, left, right = max(reviews, key=lambda r: r[0].score)
        agree = [i["field"] for i in review.explanation if i["weight"] > 0]
        differ = [i["field"] for i in review.explanation if i["weight"] < 0]
        same = (
            "same company"
            if truth[left.external_id] == truth[right.external_id]
            else "different companies"
        )
        out.print(
            f"  review {review.id} (score {review.score:.1f}): "
            f"{_label(left.system)} “{left.values.get('name', '')}”",
            highlight=False,
        )
        out.print(
            f"    ↔ {_label(right.system)} “{right.values.get('name', '')}” (truth: {same})",
            highlight=False,
        )
        out.print(
            f"    agree: {', '.join(agree) or '-'}; disagree: {', '.join(differ) or '-'}",
            highlight=False,
        )
    out.print(
        "  quality score /100 (records with errors): "
        + " · ".join(
            f"{_label(g.system)} {g.average:.0f} ({g.invalid})"
            for g in sorted(scores, key=lambda g: g.system)
        ),
        highlight=False,
    )
    out.print(
        "  next: spojka quality review · spojka quality report",
        style="dim",
        highlight=False,
    )
    ctx.facts["quality"] = {
        "records": len(rows),
        "clusters": len(groups),
        "candidate_pairs": index.compared,
        "auto_merged": decisions["merge"],
        "for_review": len(reviews),
        "precision": precision,
        "recall": recall,
    }


def _golden_example(
    db: Any, groups: Counter[str]
) -> tuple[QualityCluster, list[QualityRecord]] | None:
    """A cluster holding a record of every system (or the biggest), with its members."""
    best: tuple[QualityCluster, list[QualityRecord]] | None = None
    for cluster_id, size in groups.most_common(80):
        if size < 2:
            break
        members = list(
            db.scalars(
                sa.select(QualityRecord)
                .where(QualityRecord.cluster_id == cluster_id)
                .order_by(QualityRecord.id)
            )
        )
        cluster = db.get(QualityCluster, cluster_id)
        if cluster is None:
            continue
        systems = {m.system for m in members}
        if best is None or len(systems) > len({m.system for m in best[1]}):
            best = (cluster, members)
        if systems >= {"crm", "erp", "pm"} and len(members) == 3:
            return cluster, members
    return best
