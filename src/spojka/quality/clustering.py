"""Clusters from scored pairs, batch and incremental, with guards against chaining.

Union-find alone chains: A≈B and B≈C puts A and C together even when A and C are plainly
different companies. Two guards stop that: links are applied strongest first, and a link is
refused when it would join two records that were compared and found clearly different
(a different valid IČO, or a score below ``cannot_link_below``).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from spojka.quality.batch import (
    BoolArray,
    CompanyColumns,
    FloatArray,
    IntArray,
    candidate_pairs,
    score_companies,
)
from spojka.quality.matching import (
    DEFAULT_SETTINGS,
    BlockingIndex,
    Decision,
    Features,
    MatchSettings,
    PairScore,
    Prepared,
    features_of,
    hard_conflict,
    prepare,
    prepare_columns,
    prepared_rows,
    score_pair,
)
from spojka.quality.parallel import default_workers


class ConstrainedUnionFind:
    """Union-find whose unions are refused across a hard cannot-link pair, or when the
    records of the two clusters that were compared disagree more than they agree."""

    def __init__(self, size: int = 0) -> None:
        self.parent: list[int] = list(range(size))
        self.members: dict[int, list[int]] = {}
        self.forbidden: dict[int, set[int]] = {}
        #: scores of compared pairs that argue against a merge (soft cannot-links)
        self.against: dict[int, dict[int, float]] = {}
        #: scores of compared pairs that argue for it
        self.support: dict[int, dict[int, float]] = {}

    def add(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def forbid(self, a: int, b: int) -> None:
        """a and b must never share a cluster (different valid IČO, other establishment)."""
        self.forbidden.setdefault(a, set()).add(b)
        self.forbidden.setdefault(b, set()).add(a)

    def oppose(self, a: int, b: int, score: float) -> None:
        """a and b were compared and look different: their score counts against a merge."""
        self.against.setdefault(a, {})[b] = score
        self.against.setdefault(b, {})[a] = score

    def endorse(self, a: int, b: int, score: float) -> None:
        self.support.setdefault(a, {})[b] = score
        self.support.setdefault(b, {})[a] = score

    def _members(self, root: int) -> list[int]:
        return self.members.get(root) or [root]

    def can_union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        small, large = (ra, rb) if len(self._members(ra)) <= len(self._members(rb)) else (rb, ra)
        large_members = set(self._members(large))
        opposed = 0.0
        any_opposed = False
        for member in self._members(small):
            banned = self.forbidden.get(member)
            if banned and not banned.isdisjoint(large_members):
                return False
            against = self.against.get(member)
            if against:
                for other, score in against.items():
                    if other in large_members:
                        opposed += score
                        any_opposed = True
        if not any_opposed:
            return True
        # weigh every compared cross pair: a chain through one good link does not outvote
        # clear evidence that the two groups are different
        supported = 0.0
        for member in self._members(small):
            support = self.support.get(member)
            if support:
                supported += sum(s for o, s in support.items() if o in large_members)
        return supported + opposed > 0

    def union(self, a: int, b: int) -> bool:
        """Join the clusters of a and b unless the constraints above refuse it."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if not self.can_union(ra, rb):
            return False
        ma, mb = self._members(ra), self._members(rb)
        if len(ma) < len(mb):
            ra, rb, ma, mb = rb, ra, mb, ma
        self.parent[rb] = ra
        self.members[ra] = ma + mb
        self.members.pop(rb, None)
        return True


@dataclass(slots=True)
class ScoredLink:
    left: int
    right: int
    score: float
    decision: Decision


@dataclass(slots=True)
class DedupeResult:
    """Cluster id per record id, plus the counts a person wants to see."""

    cluster_of: dict[str, str]
    records: int
    pairs_compared: int
    links: list[ScoredLink] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clusters(self) -> int:
        return len(set(self.cluster_of.values()))

    @property
    def review_links(self) -> list[ScoredLink]:
        return [link for link in self.links if link.decision == "review"]


def cluster_links(
    size: int,
    links: Iterable[ScoredLink],
    cannot_links: Iterable[tuple[int, int]],
    opposing: Iterable[tuple[int, int, float]] = (),
) -> ConstrainedUnionFind:
    """Union the merge links, strongest first, respecting cannot-links and opposing pairs."""
    uf = ConstrainedUnionFind(size)
    for a, b in cannot_links:
        uf.forbid(a, b)
    for a, b, score in opposing:
        uf.oppose(a, b, score)
    ordered = sorted(links, key=lambda link: -link.score)
    for link in ordered:
        uf.endorse(link.left, link.right, link.score)
    for link in ordered:
        if link.decision == "merge":
            uf.union(link.left, link.right)
    return uf


def dedupe(
    entity: str,
    records: Iterable[tuple[str, Mapping[str, str | None]]],
    settings: MatchSettings = DEFAULT_SETTINGS,
    *,
    progress: Callable[[int], None] | None = None,
) -> DedupeResult:
    """Cluster records of one entity: block, score candidate pairs, cluster merge links."""
    # Millions of small, long-lived objects: the cyclic GC would rescan them again and
    # again for nothing (nothing here makes cycles), so it pauses for the run.
    with _gc_paused():
        started = time.perf_counter()
        rows = [prepare(entity, record_id, values) for record_id, values in records]
        ids = [p.record_id for p in rows]
        return _cluster(entity, ids, features_of(rows), rows, settings, started, progress)


def dedupe_columns(
    entity: str,
    ids: Sequence[str],
    columns: Mapping[str, Sequence[str | None]],
    settings: MatchSettings = DEFAULT_SETTINGS,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> DedupeResult:
    """``dedupe`` for a table given column by column (canonical field → one value per id).

    The same clusters as ``dedupe``; each distinct value of a column is normalised once,
    on ``workers`` processes (default: the cores available, at most four).
    """
    with _gc_paused():
        started = time.perf_counter()
        features = prepare_columns(
            entity, ids, columns, workers=default_workers() if workers is None else workers
        )
        result = cluster_features(entity, ids, features, settings, progress=progress)
    result.seconds = time.perf_counter() - started
    return result


def cluster_features(
    entity: str,
    ids: Sequence[str],
    features: Features,
    settings: MatchSettings = DEFAULT_SETTINGS,
    *,
    progress: Callable[[int], None] | None = None,
) -> DedupeResult:
    """Block, score and cluster a prepared table (``matching.prepare_columns``)."""
    with _gc_paused():
        return _cluster(entity, ids, features, None, settings, time.perf_counter(), progress)


@contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: pairs scored at once by the company fast path (bounds the temporary arrays)
_CHUNK = 500_000


def _score_pairs(
    entity: str,
    ids: Sequence[str],
    features: Features,
    rows: list[Prepared] | None,
    left: IntArray,
    right: IntArray,
    settings: MatchSettings,
    progress: Callable[[int], None] | None,
    companies: CompanyColumns | None,
) -> tuple[FloatArray, BoolArray]:
    """Score and hard-conflict flag of every candidate pair."""
    if companies is not None:
        scores, hard = np.zeros(left.size), np.zeros(left.size, dtype=np.bool_)
        for start in range(0, left.size, _CHUNK):
            part = slice(start, start + _CHUNK)
            scores[part], hard[part] = score_companies(companies, left[part], right[part])
            if progress is not None:
                progress(min(start + _CHUNK, left.size))
        return scores, hard
    prepared = rows if rows is not None else prepared_rows(ids, features)
    score_list: list[float] = []
    hard_list: list[bool] = []
    for done, (a, b) in enumerate(zip(left.tolist(), right.tolist(), strict=True), start=1):
        pa, pb = prepared[a], prepared[b]
        score = score_pair(entity, pa, pb, settings).score
        score_list.append(score)
        hard_list.append(hard_conflict(entity, pa, pb, score, settings))
        if progress is not None and done % 50_000 == 0:
            progress(done)
    return np.asarray(score_list, dtype=np.float64), np.asarray(hard_list, dtype=np.bool_)


def _cluster(
    entity: str,
    ids: Sequence[str],
    features: Features,
    rows: list[Prepared] | None,
    settings: MatchSettings,
    started: float,
    progress: Callable[[int], None] | None,
) -> DedupeResult:
    """Block, score and cluster a prepared table (``rows``: the same records, if at hand)."""
    size = len(ids)
    companies = CompanyColumns.of(features) if entity == "account" else None
    if companies is None and rows is None:
        rows = prepared_rows(ids, features)
    left, right = candidate_pairs(entity, rows or (), settings, companies)
    scores, hard = _score_pairs(
        entity, ids, features, rows, left, right, settings, progress, companies
    )
    opposing = ~hard & (scores < settings.cannot_link_below)
    linking = ~hard & ~opposing & (scores >= settings.review_threshold)
    merging = linking & (scores >= settings.merge_threshold)
    links = [
        ScoredLink(a, b, score, "merge" if score >= settings.merge_threshold else "review")
        for a, b, score in zip(
            left[linking].tolist(), right[linking].tolist(), scores[linking].tolist(), strict=True
        )
    ]
    # only records that take part in a merge can be chained; keep their cannot-links
    linked = np.zeros(size, dtype=np.bool_)
    linked[left[merging]] = True
    linked[right[merging]] = True
    both_linked = linked[left] & linked[right]
    cannot = zip(left[hard & both_linked].tolist(), right[hard & both_linked].tolist(), strict=True)
    kept = opposing & both_linked
    against = zip(left[kept].tolist(), right[kept].tolist(), scores[kept].tolist(), strict=True)
    uf = cluster_links(size, links, cannot, against)
    cluster_of: dict[str, str] = {}
    representative: dict[int, str] = {}
    for position, record_id in enumerate(ids):
        root = uf.find(position)
        # a cluster is named after its first record, so a singleton keeps its own id
        cluster_of[record_id] = representative.setdefault(root, record_id)
    return DedupeResult(
        cluster_of=cluster_of,
        records=size,
        pairs_compared=int(left.size),
        links=links,
        seconds=time.perf_counter() - started,
    )


@dataclass(slots=True)
class Candidate:
    """An existing record the new one resembles, and how much."""

    record_id: str
    cluster_id: str
    score: PairScore


@dataclass(slots=True)
class IncrementalMatch:
    decision: Decision
    cluster_id: str | None
    candidates: list[Candidate]


class MatchIndex:
    """Existing records and clusters; matches one new record without re-clustering all.

    A new record is compared only with the records sharing one of its blocks, so the cost
    depends on block sizes, not on how many records the index holds.
    """

    def __init__(self, entity: str, settings: MatchSettings = DEFAULT_SETTINGS) -> None:
        self.entity = entity
        self.settings = settings
        self.records: list[Prepared] = []
        self.position: dict[str, int] = {}
        self.blocking = BlockingIndex(entity, settings)
        self.uf = ConstrainedUnionFind()
        self.cluster_name: dict[int, str] = {}
        self.anchor: dict[str, int] = {}

    @classmethod
    def from_dedupe(
        cls,
        entity: str,
        records: Iterable[tuple[str, Mapping[str, str | None]]],
        result: DedupeResult,
        settings: MatchSettings = DEFAULT_SETTINGS,
    ) -> MatchIndex:
        index = cls(entity, settings)
        for record_id, values in records:
            index.insert(record_id, values, result.cluster_of[record_id])
        return index

    def insert(self, record_id: str, values: Mapping[str, str | None], cluster_id: str) -> None:
        """File a record into a known cluster without matching (loading a stored state)."""
        position = self._insert(prepare(self.entity, record_id, values))
        anchor = self.anchor.get(cluster_id)
        if anchor is None:
            self.anchor[cluster_id] = position
            self.cluster_name[position] = cluster_id
            return
        root = self.uf.find(anchor)
        # stored clusters were decided before (maybe by a person): restore them as they are
        self.uf.parent[position] = root
        self.uf.members[root] = [*self.uf._members(root), position]

    def __len__(self) -> int:
        return len(self.records)

    def _insert(self, p: Prepared) -> int:
        position = self.uf.add()
        self.records.append(p)
        self.position[p.record_id] = position
        self.blocking.add(position, p)
        return position

    def cluster_id(self, record_id: str) -> str:
        root = self.uf.find(self.position[record_id])
        return self.cluster_name.get(root) or self.records[root].record_id

    def match(self, record_id: str, values: Mapping[str, str | None]) -> IncrementalMatch:
        """Where a new or changed record belongs, without changing the index."""
        p = prepare(self.entity, record_id, values)
        return self._match_prepared(p)

    def _match_prepared(self, p: Prepared, *, explain: bool = True) -> IncrementalMatch:
        candidates: list[Candidate] = []
        # per candidate cluster: evidence for and against, as the batch clustering weighs it
        support: dict[str, float] = {}
        against: dict[str, float] = {}
        forbidden: set[str] = set()
        for position in self.blocking.candidates(p):
            other = self.records[position]
            if other.record_id == p.record_id:
                continue
            result = score_pair(self.entity, p, other, self.settings, explain=explain)
            cluster = self.cluster_id(other.record_id)
            score = result.score
            if hard_conflict(self.entity, p, other, score, self.settings):
                forbidden.add(cluster)
            elif score < self.settings.cannot_link_below:
                against[cluster] = against.get(cluster, 0.0) + score
            elif score >= self.settings.review_threshold:
                support[cluster] = support.get(cluster, 0.0) + score
            if result.decision != "separate":
                candidates.append(Candidate(other.record_id, cluster, result))
        candidates.sort(key=lambda c: -c.score.score)
        for candidate in candidates:
            cluster = candidate.cluster_id
            if cluster in forbidden:
                continue
            if support.get(cluster, 0.0) + against.get(cluster, 0.0) <= 0:
                continue  # the cluster holds records this one clearly is not
            return IncrementalMatch(candidate.score.decision, cluster, candidates)
        return IncrementalMatch("separate", None, candidates)

    def add(self, record_id: str, values: Mapping[str, str | None]) -> IncrementalMatch:
        """Match a new record and file it: into its cluster on a merge, else on its own."""
        if record_id in self.position:
            raise ValueError(f"record {record_id!r} is already indexed")
        p = prepare(self.entity, record_id, values)
        outcome = self._match_prepared(p, explain=False)
        position = self._insert(p)
        if outcome.decision == "merge" and outcome.cluster_id is not None:
            anchor = self.position[outcome.candidates[0].record_id]
            for candidate in outcome.candidates:
                if candidate.cluster_id == outcome.cluster_id:
                    anchor = self.position[candidate.record_id]
                    break
            name = self.cluster_id(self.records[anchor].record_id)
            if self.uf.union(anchor, position):
                self.cluster_name[self.uf.find(position)] = name
                return outcome
            outcome = IncrementalMatch("review", outcome.cluster_id, outcome.candidates)
        self.cluster_name[position] = record_id
        self.anchor[record_id] = position
        return outcome
