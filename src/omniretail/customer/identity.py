"""Identity graph: identifiers seen together are linked; linked people are merged.

A *profile* is created for every identity cluster seen. Identifiers keep the profile that first
owned them, for good; when two clusters turn out to be one person, the absorbed profile points
at the survivor (``merged_into_id``) and every profile of the person carries the person's id
(``root_id``). Each merge is a ``Merge`` row (an edge with its cause and evidence), so it can be
explained and undone: an unmerge cuts the edge and gives each side its identifiers and events
back, and the pair is not merged again automatically.

Rules (``OMNI_IDENTITY_*``):

* per identifier-type limits: a person has at most N identifiers of a type (one user id by
  default); a link that would exceed a limit is recorded but does not merge;
* blocked values (shared test emails, "undefined", ...) never link anything;
* a device or anonymous id seen with ``identity_shared_device_users`` different user ids is
  marked shared and ignored for linking from then on;
* an explicit ``alias`` call merges regardless of the type limits (it is an instruction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    String,
    Table,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from omniretail.core.bulk import insert_rows
from omniretail.core.errors import AppError, not_found
from omniretail.core.ids import new_id
from omniretail.core.timeutil import as_utc, utcnow
from omniretail.customer import domain
from omniretail.customer.crypto import KeyRing, encrypt_text, key_ring
from omniretail.customer.keys import data_keys
from omniretail.customer.models import Identifier, IdentityLink, Merge, Profile
from omniretail.customer.settings import get_customer_settings

PRIORITY = {
    "user_id": 0,
    "email": 1,
    "phone": 2,
    "loyalty_card": 3,
    "previous_id": 5,
    "device_id": 6,
    "anonymous_id": 7,
}

_profiles = cast(Table, Profile.__table__)
_identifiers = cast(Table, Identifier.__table__)
_links = cast(Table, IdentityLink.__table__)
_PROFILE_COLUMNS = (
    "id",
    "root_id",
    "status",
    "traits",
    "channels_mask",
    "event_count",
    "created_at",
    "updated_at",
)
_IDENTIFIER_COLUMNS = (
    "type",
    "value_hash",
    "value",
    "value_enc",
    "profile_id",
    "shared",
    "source",
    "created_at",
)
_LINK_COLUMNS = (
    "a_hash",
    "a_type",
    "b_hash",
    "b_type",
    "cause",
    "source",
    "message_id",
    "outcome",
    "created_at",
)
_CHUNK = 500


def priority(kind: str) -> int:
    return PRIORITY.get(kind, 4)  # external ids rank between loyalty cards and devices


def _pair(h1: str, h2: str) -> tuple[str, str]:
    return (h1, h2) if h1 <= h2 else (h2, h1)


def in_param(column: Any, name: str, dialect: str) -> Any:
    """``column IN (:name)`` for a list parameter; on PostgreSQL ``= ANY(:name)``, one array
    parameter however many values (the statement text stays the same, so the driver does
    not parse it again)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(String())))
    return column.in_(bindparam(name, expanding=True))


# Statements of the batch path, built once per dialect (building a select costs more than
# running it on a small batch).


# The hottest query of the batch, in driver SQL: rows straight from the driver (last-seen
# times stay as the driver returns them; only each person's latest is converted).
_PREFETCH_SQL = (
    "SELECT i.value_hash, i.type, i.profile_id, i.shared, p.root_id, p.last_seen_at "
    "FROM customer_identifiers AS i JOIN customer_profiles AS p ON p.id = i.profile_id "
    "WHERE i.value_hash "
)


def _prefetch_rows(conn: Connection, hashes: Sequence[str]) -> Sequence[Any]:
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(_PREFETCH_SQL + "= ANY(%s)", (list(hashes),)).fetchall()
    marks = ", ".join("?" * len(hashes))
    return conn.exec_driver_sql(f"{_PREFETCH_SQL}IN ({marks})", tuple(hashes)).fetchall()


def _time_of(conn: Connection) -> Callable[[Any], datetime | None]:
    """Converts a last-seen time as the driver returns it (SQLite: text in SQLAlchemy's
    storage format, which sorts like the times) into an aware UTC datetime."""
    column = cast(Table, Profile.__table__).c.last_seen_at
    process = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)

    def convert(value: Any) -> datetime | None:
        parsed = process(value) if process is not None and value is not None else value
        return None if parsed is None else as_utc(parsed)

    return convert


@lru_cache(maxsize=4)
def _links_statement(dialect: str) -> Any:
    return select(IdentityLink.a_hash, IdentityLink.b_hash).where(
        in_param(IdentityLink.a_hash, "a", dialect), in_param(IdentityLink.b_hash, "b", dialect)
    )


@lru_cache(maxsize=4)
def _counts_statement(dialect: str) -> Any:
    members = aliased(Profile)
    return (
        select(members.root_id, Identifier.type, func.count())
        .join(members, members.id == Identifier.profile_id)
        .where(in_param(members.root_id, "roots", dialect))
        .group_by(members.root_id, Identifier.type)
    )


@lru_cache(maxsize=4)
def _unmerged_statement(dialect: str) -> Any:
    survivor = aliased(Profile)
    absorbed = aliased(Profile)
    return (
        select(survivor.root_id, absorbed.root_id)
        .select_from(Merge)
        .join(survivor, survivor.id == Merge.survivor_id)
        .join(absorbed, absorbed.id == Merge.absorbed_id)
        .where(
            Merge.undone_at.is_not(None),
            or_(
                in_param(survivor.root_id, "roots", dialect),
                in_param(absorbed.root_id, "roots", dialect),
            ),
        )
    )


@dataclass
class Ident:
    hash: str
    type: str
    profile_id: str
    shared: bool
    root_id: str


@dataclass(frozen=True)
class Seen:
    """An identifier as it arrives: type, normalised value and blind-index hash."""

    type: str
    value: str
    hash: str


class Hasher:
    """Normalises identifiers and computes their blind-index hashes (remembering each value
    once). Needs no database, so a batch is hashed before its transaction starts."""

    def __init__(self) -> None:
        self.ring: KeyRing = key_ring()
        blocked = get_customer_settings().identity_blocked_values
        self.blocked = frozenset(b.strip().lower() for b in blocked)
        self._cache: dict[tuple[str, object], Seen | None] = {}

    def seen(self, kind: str, raw: object) -> Seen | None:
        """Normalise and hash; ``None`` for unusable or blocked values."""
        if raw is None:
            return None
        cache_key = (kind, raw if isinstance(raw, str | int) else repr(raw))
        if cache_key in self._cache:
            return self._cache[cache_key]
        lookup_kind = "user_id" if kind == "previous_id" else kind
        value = domain.normalise_identifier(lookup_kind, raw)
        found = None
        if value is not None and value.lower() not in self.blocked:
            found = Seen(kind, value, self.ring.blind_index(lookup_kind, value))
        self._cache[cache_key] = found
        return found


class Resolver:
    """Resolves identifiers to profiles for a batch of calls, creating and linking as needed.

    Construct once per transaction. It works set-based:

    * ``prefetch`` loads every identifier of the batch, its profile's person and last-seen
      time in one query; ``preload`` then loads in one query the stored links between known
      identifiers of different people that the batch may link;
    * identifier counts per person (for the type limits) and undone merges are loaded in one
      query for every person of the batch that may need them, the first time one is needed,
      and kept up to date in memory;
    * new profiles, identifiers (personal ones encrypted under the profile's data key) and
      links are collected and written by ``flush`` in one multi-row insert per table (a merge
      flushes first, since it works on stored rows).

    The common case (everything known and already one person) costs one query."""

    def __init__(
        self, session: Session, source: str, actor: str, hasher: Hasher | None = None
    ) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.source = source
        self.actor = actor
        self.hasher = hasher or Hasher()
        settings = get_customer_settings()
        self.limits = settings.identity_limits
        self.shared_threshold = settings.identity_shared_device_users
        self.known: dict[str, Ident | None] = {}
        # latest event before this batch of the person's profiles seen in it, per root, as
        # the driver returns it (see ``people_last_seen``)
        self.last_seen: dict[str, Any] = {}
        self.checked_pairs: set[tuple[str, str]] = set()
        self.created_profiles: list[str] = []
        self._new: set[str] = set()
        self._created: set[str] = set()  # hashes of identifiers created in this batch
        self._roots: dict[str, str] = {}  # absorbed root -> survivor, for merges in this batch
        self._links_added: set[tuple[str, str]] = set()
        self._links_stored: set[tuple[str, str]] = set()
        self._links_absent: set[tuple[str, str]] = set()  # looked up: not stored before
        self._candidates: set[str] = set()  # roots whose counts or merges may be needed
        self._counts: dict[str, dict[str, int]] = {}  # current root -> identifiers per type
        self._profile_roots: dict[str, str] = {}  # profile -> its root when first seen
        self._unmerged: list[tuple[str, str]] | None = None
        self._unmerged_for: set[str] = set()
        self._new_profiles: list[tuple[Any, ...]] = []
        self._new_identifiers: list[tuple[list[Any], str | None]] = []  # row, PII plaintext
        self._new_identifier_roots: list[tuple[str, str]] = []  # (root at creation, type)
        self._new_links: list[tuple[Any, ...]] = []

    # --- identifiers ------------------------------------------------------------------

    def seen(self, kind: str, raw: object) -> Seen | None:
        """Normalise and hash; ``None`` for unusable or blocked values."""
        return self.hasher.seen(kind, raw)

    def prefetch(self, hashes: Iterable[str]) -> None:
        wanted = [h for h in dict.fromkeys(hashes) if h not in self.known]
        if not wanted:
            return
        conn = self.session.connection()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = _prefetch_rows(conn, chunk)
            found = {r[0]: Ident(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows}
            for r in rows:
                seen = self.last_seen.get(r[4])
                if seen is None or (r[5] is not None and r[5] > seen):
                    self.last_seen[r[4]] = r[5]
                self._profile_roots.setdefault(r[2], r[4])
            for h in chunk:
                self.known[h] = found.get(h)

    def preload(self, calls: Iterable[Sequence[Seen]]) -> None:
        """After ``prefetch``: note the people whose identifier counts or merge history the
        calls may need, and load in one query the stored links between known identifiers of
        different people seen together (each link is decided once)."""
        pairs: set[tuple[str, str]] = set()
        for seen in calls:
            idents = [self.known.get(s.hash) for s in seen]
            known = [i for i in idents if i is not None]
            roots = {i.root_id for i in known}
            if len(known) == len(idents) and len(roots) <= 1:
                continue  # one known person: nothing to decide
            self._candidates |= roots
            for n, a in enumerate(known):
                for b in known[n + 1 :]:
                    if a.root_id != b.root_id:
                        pairs.add(_pair(a.hash, b.hash))
        pairs -= self._links_stored | self._links_absent
        if pairs:
            self._load_links(sorted(pairs))

    def _load_links(self, pairs: Sequence[tuple[str, str]]) -> None:
        conn = self.session.connection()
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            rows = conn.execute(
                _links_statement(self.dialect),
                {"a": sorted({a for a, _ in chunk}), "b": sorted({b for _, b in chunk})},
            ).all()
            stored = {(a, b) for a, b in rows}
            for pair in chunk:
                (self._links_stored if pair in stored else self._links_absent).add(pair)

    def _lookup(self, seen: Seen) -> Ident | None:
        if seen.hash not in self.known:
            self.prefetch([seen.hash])
        return self.known[seen.hash]

    def _create_identifier(self, seen: Seen, profile_id: str, root_id: str) -> Ident:
        kind = "user_id" if seen.type == "previous_id" else seen.type
        personal = kind in domain.PII_IDENTIFIER_TYPES
        row: list[Any] = [kind, seen.hash, None if personal else seen.value, None, profile_id]
        row += [False, self.source, utcnow()]
        self._new_identifiers.append((row, seen.value if personal else None))
        root = self._root(root_id)
        self._new_identifier_roots.append((root, kind))
        counts = self._counts.get(root)
        if counts is not None:
            counts[kind] = counts.get(kind, 0) + 1
        ident = Ident(seen.hash, kind, profile_id, False, root)
        self.known[seen.hash] = ident
        self._created.add(seen.hash)
        self._profile_roots.setdefault(profile_id, root)
        return ident

    def _new_profile(self) -> str:
        pid = new_id("cus")
        now = utcnow()
        self._new_profiles.append((pid, pid, "active", {}, 0, 0, now, now))
        self.created_profiles.append(pid)
        self._new.add(pid)
        self._counts[pid] = {}
        return pid

    def new_profiles(self) -> set[str]:
        """Profiles created by this resolver (never stored with a data key before)."""
        return set(self._new)

    def flush(self) -> None:
        """Write the new profiles, identifiers and links: one multi-row insert per table."""
        conn = self.session.connection()
        if self._new_profiles:
            insert_rows(conn, _profiles, _PROFILE_COLUMNS, self._new_profiles)
            self._new_profiles = []
        if self._new_identifiers:
            personal = {row[4] for row, plain in self._new_identifiers if plain is not None}
            keys = data_keys(self.session, personal, create=True, new=self._new)
            rows = []
            for row, plain in self._new_identifiers:
                if plain is not None:
                    row[3] = encrypt_text(keys[row[4]], plain)
                rows.append(row)
            insert_rows(conn, _identifiers, _IDENTIFIER_COLUMNS, rows)
            self._new_identifiers = []
            self._new_identifier_roots = []
        if self._new_links:
            insert_rows(conn, _links, _LINK_COLUMNS, self._new_links)
            self._new_links = []

    # --- resolution -------------------------------------------------------------------

    def resolve(
        self, seen: Sequence[Seen], cause: str, message_id: str | None = None
    ) -> str | None:
        """Link the identifiers of one call; returns the profile the call is attributed to
        (the owner of its highest-priority identifier), or ``None`` if none is usable."""
        present: list[Seen] = []
        hashes: set[str] = set()
        for s in sorted(seen, key=lambda s: priority(s.type)):
            if s.hash not in hashes:
                hashes.add(s.hash)
                present.append(s)
        if not present:
            return None
        anchor = present[0]
        anchor_ident = self._lookup(anchor)
        if anchor_ident is None:
            anchor_ident = self._place_new(anchor, present[1:], cause, message_id)
        target = anchor_ident.root_id
        for other in present[1:]:
            ident = self._lookup(other)
            if ident is None:
                target = self._attach(other, anchor, target, cause, message_id)
                continue
            target = self._root(target)
            if self._root(ident.root_id) == target:
                continue
            target = self._link_existing(anchor, ident, target, cause, message_id)
        return anchor_ident.profile_id

    def person_of(self, profile_id: str) -> str:
        """The current person (root) of a profile the batch resolved to."""
        return self._root(self._profile_roots.get(profile_id, profile_id))

    def people_last_seen(self) -> dict[str, datetime | None]:
        """Each current person's latest event before this batch, from the last-seen times of
        their profiles that own identifiers of the batch (people merged in the batch take the
        latest of their parts; people created in the batch have none)."""
        latest: dict[str, Any] = {}
        for root, seen in self.last_seen.items():
            person = self._root(root)
            best = latest.get(person)
            latest[person] = seen if best is None or (seen is not None and seen > best) else best
        convert = _time_of(self.session.connection())
        return {person: convert(seen) for person, seen in latest.items()}

    def _root(self, profile_id: str) -> str:
        """The current person of a profile (in-batch merges update ``known`` roots)."""
        return self._roots.get(profile_id, profile_id)

    def _place_new(
        self, anchor: Seen, rest: Sequence[Seen], cause: str, message_id: str | None
    ) -> Ident:
        """A new highest-priority identifier joins the person of the first known (unshared)
        identifier of the call when the limits allow it; otherwise it starts a new profile."""
        for other in rest:
            ident = self._lookup(other)
            if ident is None or ident.shared:
                continue
            root = self._root(ident.root_id)
            violation = self._attach_violation(root, anchor.type, cause)
            if violation is None:
                created = self._create_identifier(anchor, root, root)
                self._record_link(anchor, other, cause, message_id, "attached")
                return created
            break
        pid = self._new_profile()
        return self._create_identifier(anchor, pid, pid)

    def _attach(
        self, seen: Seen, anchor: Seen, target: str, cause: str, message_id: str | None
    ) -> str:
        target = self._root(target)
        violation = self._attach_violation(target, seen.type, cause)
        if violation is None:
            self._create_identifier(seen, target, target)
            self._record_link(anchor, seen, cause, message_id, "attached")
        else:
            pid = self._new_profile()
            self._create_identifier(seen, pid, pid)
            self._record_link(anchor, seen, cause, message_id, f"rejected:{violation}")
        return target

    def _attach_violation(self, root: str, kind: str, cause: str) -> str | None:
        if cause == "alias":
            return None
        kind = "user_id" if kind == "previous_id" else kind
        limit = self.limits.get(domain.limit_key(kind))
        if limit is None or limit >= 1000:
            return None
        return domain.attach_violation(self.counts(root), kind, self.limits)

    def _link_existing(
        self, anchor: Seen, ident: Ident, target: str, cause: str, message_id: str | None
    ) -> str:
        pair = _pair(anchor.hash, ident.hash)
        if pair in self.checked_pairs:
            return target
        self.checked_pairs.add(pair)
        other_seen = Seen(ident.type, "", ident.hash)
        if self._link_exists(anchor.hash, ident.hash):
            return target  # decided before (merged, rejected or unmerged): not again
        if ident.shared:
            self._record_link(anchor, other_seen, cause, message_id, "ignored:shared")
            return target
        other_root = self._root(ident.root_id)
        if self._was_unmerged(target, other_root):
            self._record_link(anchor, other_seen, cause, message_id, "ignored:unmerged")
            return target
        violation = None
        if cause != "alias":
            violation = domain.merge_violation(
                self.counts(target), self.counts(other_root), self.limits
            )
        if violation is not None:
            self._record_link(anchor, other_seen, cause, message_id, f"rejected:{violation}")
            if ident.type in domain.DEVICE_TYPES and anchor.type == "user_id":
                self._check_shared(ident)
            return target
        self._record_link(anchor, other_seen, cause, message_id, "merged")
        self.flush()  # a merge works on stored rows
        merge = merge_roots(
            self.session,
            target,
            other_root,
            cause=cause,
            actor=self.actor,
            explanation=(
                f"{cause}: {anchor.type} and {ident.type} seen together"
                + (f" in message {message_id!r}" if message_id else "")
                + f" from source {self.source!r}"
            ),
            evidence={
                "identifiers": [anchor.type, ident.type],
                "source": self.source,
                "message_id": message_id,
            },
        )
        self._after_merge(merge.absorbed_id, merge.survivor_id)
        return merge.survivor_id

    def _after_merge(self, absorbed: str, survivor: str) -> None:
        for pid, root in list(self._roots.items()):
            if root == absorbed:
                self._roots[pid] = survivor
        self._roots[absorbed] = survivor
        for ident in self.known.values():
            if ident is not None and self._root(ident.root_id) == survivor:
                ident.root_id = survivor
        a, s = self._counts.pop(absorbed, None), self._counts.get(survivor)
        if a is not None and s is not None:
            for kind, n in a.items():
                s[kind] = s.get(kind, 0) + n
        else:
            self._counts.pop(survivor, None)  # reloaded from the stored rows when needed
        self._unmerged = None

    def _check_shared(self, device: Ident) -> None:
        self.flush()  # links of this batch count too
        a = aliased(IdentityLink)
        users = self.session.scalar(
            select(func.count())
            .select_from(a)
            .where(
                or_(
                    and_(a.a_hash == device.hash, a.b_type == "user_id"),
                    and_(a.b_hash == device.hash, a.a_type == "user_id"),
                )
            )
        )
        if (users or 0) >= self.shared_threshold:
            self.session.execute(
                update(Identifier).where(Identifier.value_hash == device.hash).values(shared=True)
            )
            device.shared = True

    def _link_exists(self, h1: str, h2: str) -> bool:
        pair = _pair(h1, h2)
        if pair in self._links_added or pair in self._links_stored:
            return True
        if h1 in self._created or h2 in self._created:
            return False  # an identifier created in this batch has no stored link
        if pair not in self._links_absent:
            self._load_links([pair])
        return pair in self._links_stored

    def _record_link(
        self, first: Seen, second: Seen, cause: str, message_id: str | None, outcome: str
    ) -> None:
        (a_hash, a_type), (b_hash, b_type) = sorted(
            [
                (first.hash, "user_id" if first.type == "previous_id" else first.type),
                (second.hash, "user_id" if second.type == "previous_id" else second.type),
            ]
        )
        if (a_hash, b_hash) in self._links_added:
            return
        self._links_added.add((a_hash, b_hash))
        self._new_links.append(
            (a_hash, a_type, b_hash, b_type, cause, self.source, message_id, outcome, utcnow())
        )

    def counts(self, root: str) -> dict[str, int]:
        """Identifier counts per type of a person, stored and created in this batch. Loaded
        in one query for every person of the batch that may need them, then kept in memory."""
        found = self._counts.get(root)
        if found is not None:
            return found
        roots = {self._root(r) for r in self._candidates} | {root}
        wanted = sorted(roots - self._counts.keys())
        loaded: dict[str, dict[str, int]] = {r: {} for r in wanted}
        conn = self.session.connection()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = conn.execute(_counts_statement(self.dialect), {"roots": chunk}).all()
            for r, kind, n in rows:
                loaded[r][kind] = int(n)
        for r, kind in self._new_identifier_roots:  # created and not stored yet
            current = self._root(r)
            if current in loaded:
                loaded[current][kind] = loaded[current].get(kind, 0) + 1
        self._counts.update(loaded)
        return self._counts[root]

    def _was_unmerged(self, root_a: str, root_b: str) -> bool:
        """Whether a merge between these two people was undone (loaded once per batch for
        every person of the batch; merges write through, so stored roots are current)."""
        if root_a in self._new or root_b in self._new:
            return False  # a person created in this batch has no merge history
        if self._unmerged is None or not {root_a, root_b} <= self._unmerged_for:
            roots = sorted({self._root(r) for r in self._candidates} | {root_a, root_b})
            found: list[tuple[str, str]] = []
            for start in range(0, len(roots), _CHUNK):
                chunk = roots[start : start + _CHUNK]
                found += [
                    (s, a)
                    for s, a in self.session.connection().execute(
                        _unmerged_statement(self.dialect), {"roots": chunk}
                    )
                ]
            self._unmerged = found
            self._unmerged_for = set(roots)
        wanted = {root_a, root_b}
        return any({self._root(s), self._root(a)} == wanted for s, a in self._unmerged)


# --- queries shared with the service ---------------------------------------------------


def identifier_counts(session: Session, root: str) -> dict[str, int]:
    rows = session.execute(
        select(Identifier.type, func.count())
        .join(Profile, Profile.id == Identifier.profile_id)
        .where(Profile.root_id == root)
        .group_by(Identifier.type)
    ).all()
    return {kind: int(n) for kind, n in rows}


def was_unmerged(session: Session, root_a: str, root_b: str) -> bool:
    survivor = aliased(Profile)
    absorbed = aliased(Profile)
    row = session.scalar(
        select(Merge.id)
        .join(survivor, survivor.id == Merge.survivor_id)
        .join(absorbed, absorbed.id == Merge.absorbed_id)
        .where(
            Merge.undone_at.is_not(None),
            or_(
                and_(survivor.root_id == root_a, absorbed.root_id == root_b),
                and_(survivor.root_id == root_b, absorbed.root_id == root_a),
            ),
        )
        .limit(1)
    )
    return row is not None


def root_of(session: Session, profile_id: str) -> Profile:
    """The person (root profile) of any profile id; 404 if unknown."""
    profile = session.get(Profile, profile_id)
    if profile is None:
        raise not_found("customer", profile_id)
    if profile.root_id != profile.id:
        root = session.get(Profile, profile.root_id)
        if root is None:  # pragma: no cover - the graph is kept consistent
            raise not_found("customer", profile.root_id)
        return root
    return profile


def member_ids(session: Session, root_id: str) -> list[str]:
    return list(
        session.scalars(select(Profile.id).where(Profile.root_id == root_id).order_by(Profile.id))
    )


def _is_known(counts: dict[str, int]) -> bool:
    return any(counts.get(t, 0) for t in domain.KNOWN_TYPES)


def merge_roots(
    session: Session,
    root_a: str,
    root_b: str,
    *,
    cause: str,
    actor: str,
    explanation: str,
    evidence: dict[str, object],
) -> Merge:
    """Make two people one: the survivor is the known one (else the older)."""
    if root_a == root_b:
        raise AppError("already_merged", "these profiles are already one customer", 409)
    session.flush()
    profiles = {
        p.id: p
        for p in session.scalars(
            select(Profile).where(Profile.id.in_([root_a, root_b])).with_for_update()
        )
    }
    a, b = profiles[root_a], profiles[root_b]
    survivor_id, absorbed_id = domain.choose_survivor(
        (a.id, _is_known(identifier_counts(session, a.id)), a.created_at),
        (b.id, _is_known(identifier_counts(session, b.id)), b.created_at),
    )
    now = utcnow()
    session.execute(
        update(Profile)
        .where(Profile.root_id == absorbed_id)
        .values(root_id=survivor_id, updated_at=now)
    )
    absorbed = profiles[absorbed_id]
    absorbed.merged_into_id = survivor_id
    absorbed.status = "merged"
    merge = Merge(
        id=new_id("mrg"),
        survivor_id=survivor_id,
        absorbed_id=absorbed_id,
        cause=cause,
        explanation=explanation,
        evidence=evidence,
        actor=actor,
        created_at=now,
    )
    session.add(merge)
    session.flush()
    return merge


def unmerge(session: Session, merge_id: str, actor: str, reason: str) -> Merge:
    """Undo one merge: the absorbed profile (with the profiles it had absorbed itself, its
    identifiers and events) becomes a person again."""
    merge = session.get(Merge, merge_id, with_for_update=True)
    if merge is None:
        raise not_found("merge", merge_id)
    if merge.undone_at is not None:
        raise AppError("merge_already_undone", f"merge {merge_id!r} was already undone", 409)
    absorbed = session.get(Profile, merge.absorbed_id)
    if absorbed is None or absorbed.merged_into_id != merge.survivor_id:
        raise AppError("merge_not_current", "this merge is no longer in effect", 409)
    if absorbed.status == "erased":
        raise AppError("customer_erased", "an erased customer cannot be unmerged", 409)
    old_root = absorbed.root_id
    members = session.execute(
        select(Profile.id, Profile.merged_into_id).where(Profile.root_id == old_root)
    ).all()
    children: dict[str, list[str]] = {}
    for pid, parent in members:
        if parent:
            children.setdefault(parent, []).append(pid)
    subtree = [absorbed.id]
    for pid in subtree:
        subtree.extend(children.get(pid, []))
    now = utcnow()
    session.execute(
        update(Profile)
        .where(Profile.id.in_(subtree))
        .values(root_id=absorbed.id, updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    absorbed.merged_into_id = None
    absorbed.status = "active"
    merge.undone_at = now
    merge.undone_by = actor
    merge.undo_reason = reason
    session.flush()
    return merge


def merges_of(session: Session, root_id: str) -> list[Merge]:
    """Every merge (current or undone) that touched a profile of this person."""
    ids = member_ids(session, root_id)
    return list(
        session.scalars(
            select(Merge)
            .where(or_(Merge.survivor_id.in_(ids), Merge.absorbed_id.in_(ids)))
            .order_by(Merge.created_at, Merge.id)
        )
    )
