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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, event, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from omniretail.core.errors import AppError, not_found
from omniretail.core.ids import new_id
from omniretail.core.timeutil import utcnow
from omniretail.customer import domain
from omniretail.customer.crypto import KeyRing, encrypt_text, key_ring
from omniretail.customer.keys import data_keys
from omniretail.customer.models import Identifier, IdentityLink, Merge, Profile
from omniretail.customer.settings import get_customer_settings

_PENDING = "customer_pending_identifiers"
_FLUSHES = "customer_flushes"


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: object) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending.clear()
    session.info[_FLUSHES] = session.info.get(_FLUSHES, 0) + 1


PRIORITY = {
    "user_id": 0,
    "email": 1,
    "phone": 2,
    "loyalty_card": 3,
    "previous_id": 5,
    "device_id": 6,
    "anonymous_id": 7,
}


def priority(kind: str) -> int:
    return PRIORITY.get(kind, 4)  # external ids rank between loyalty cards and devices


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


class Resolver:
    """Resolves identifiers to profiles for a batch of calls, creating and linking as needed.

    Construct once per transaction; ``prefetch`` loads every identifier of the batch in one
    query so that the common case (everything known and already one person) costs nothing
    more."""

    def __init__(self, session: Session, source: str, actor: str) -> None:
        self.session = session
        self.source = source
        self.actor = actor
        self.ring: KeyRing = key_ring()
        settings = get_customer_settings()
        self.limits = settings.identity_limits
        self.blocked = frozenset(b.strip().lower() for b in settings.identity_blocked_values)
        self._seen_cache: dict[tuple[str, object], Seen | None] = {}
        self.shared_threshold = settings.identity_shared_device_users
        self.known: dict[str, Ident | None] = {}
        self.checked_pairs: set[tuple[str, str]] = set()
        self.created_profiles: list[str] = []
        # profiles created by this resolver -> the session's flush count at their creation:
        # until the next flush nothing of theirs is stored (no key, no identifier to count)
        self._created_at: dict[str, int] = {}
        self._roots: dict[str, str] = {}  # absorbed root -> survivor, for merges in this batch
        self._links_added: set[tuple[str, str]] = set()
        # (root, type) of identifiers created and not flushed yet; emptied by every flush
        self._pending: list[tuple[str, str]] = session.info.setdefault(_PENDING, [])
        self._pending.clear()

    # --- identifiers ------------------------------------------------------------------

    def seen(self, kind: str, raw: object) -> Seen | None:
        """Normalise and hash; ``None`` for unusable or blocked values."""
        if raw is None:
            return None
        cache_key = (kind, raw if isinstance(raw, str | int) else repr(raw))
        if cache_key in self._seen_cache:
            return self._seen_cache[cache_key]
        lookup_kind = "user_id" if kind == "previous_id" else kind
        value = domain.normalise_identifier(lookup_kind, raw)
        found = None
        if value is not None and value.lower() not in self.blocked:
            found = Seen(kind, value, self.ring.blind_index(lookup_kind, value))
        self._seen_cache[cache_key] = found
        return found

    def prefetch(self, hashes: Iterable[str]) -> None:
        wanted = [h for h in set(hashes) if h not in self.known]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            with self.session.no_autoflush:  # identifiers created in this batch are in known
                rows = self._fetch(chunk)
            found = {r[0]: Ident(r[0], r[1], r[2], r[3], r[4]) for r in rows}
            for h in chunk:
                self.known[h] = found.get(h)

    def _fetch(self, chunk: list[str]) -> Sequence[Any]:
        return self.session.execute(
            select(
                Identifier.value_hash,
                Identifier.type,
                Identifier.profile_id,
                Identifier.shared,
                Profile.root_id,
            )
            .join(Profile, Profile.id == Identifier.profile_id)
            .where(Identifier.value_hash.in_(chunk))
        ).all()

    def _lookup(self, seen: Seen) -> Ident | None:
        if seen.hash not in self.known:
            self.prefetch([seen.hash])
        return self.known[seen.hash]

    def _create_identifier(self, seen: Seen, profile_id: str, root_id: str) -> Ident:
        kind = "user_id" if seen.type == "previous_id" else seen.type
        row = Identifier(
            type=kind,
            value_hash=seen.hash,
            profile_id=profile_id,
            shared=False,
            source=self.source,
        )
        if kind in domain.PII_IDENTIFIER_TYPES:
            key = data_keys(self.session, [profile_id], create=True, new=self.new_profiles())[
                profile_id
            ]
            row.value_enc = encrypt_text(key, seen.value)
        else:
            row.value = seen.value
        self.session.add(row)
        self._pending.append((root_id, kind))
        ident = Ident(seen.hash, kind, profile_id, False, root_id)
        self.known[seen.hash] = ident
        return ident

    def _new_profile(self) -> str:
        pid = new_id("cus")
        now = utcnow()
        self.session.add(
            Profile(
                id=pid,
                root_id=pid,
                status="active",
                traits={},
                channels_mask=0,
                event_count=0,
                created_at=now,
                updated_at=now,
            )
        )
        self.created_profiles.append(pid)
        self._created_at[pid] = self.session.info.get(_FLUSHES, 0)
        return pid

    def new_profiles(self) -> set[str]:
        """Profiles created by this resolver (never stored with a data key before)."""
        return set(self._created_at)

    def _unflushed(self, profile_id: str) -> bool:
        """Created by this resolver and not flushed since: nothing of it is in the database."""
        at = self._created_at.get(profile_id)
        return at is not None and at == self.session.info.get(_FLUSHES, 0)

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
        pair = tuple(sorted((anchor.hash, ident.hash)))
        if pair in self.checked_pairs:
            return target
        self.checked_pairs.add((pair[0], pair[1]))
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

    def _check_shared(self, device: Ident) -> None:
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
        a, b = sorted((h1, h2))
        if (a, b) in self._links_added:
            return True
        with self.session.no_autoflush:  # links added in this batch are known in memory
            found = self.session.scalar(
                select(IdentityLink.id).where(IdentityLink.a_hash == a, IdentityLink.b_hash == b)
            )
        return found is not None

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
        self.session.add(
            IdentityLink(
                a_hash=a_hash,
                a_type=a_type,
                b_hash=b_hash,
                b_type=b_type,
                cause=cause,
                source=self.source,
                message_id=message_id,
                outcome=outcome,
            )
        )

    def counts(self, root: str) -> dict[str, int]:
        """Identifier counts per type of a person: stored ones plus those created in this
        batch and not flushed yet (saves a flush per check)."""
        if self._unflushed(root):
            counts: dict[str, int] = {}  # no stored identifier can belong to it yet
        else:
            with self.session.no_autoflush:
                counts = identifier_counts(self.session, root)
        for pid, kind in self._pending:
            if self._root(pid) == root:
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def _was_unmerged(self, root_a: str, root_b: str) -> bool:
        with self.session.no_autoflush:  # merges write through; roots in the DB are current
            return was_unmerged(self.session, root_a, root_b)


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
