"""The fast sourcing solver used on the request path (pure, numpy-vectorised).

Over an :class:`~omniretail.fulfillment.domain.Instance`, in this order:

1. **One location, proven.** The best location that holds everything; if no plan with two
   packages can be cheaper (the two cheapest packages plus the cheapest units already cost
   more), it is optimal and the search stops. Most orders on dense stock end here.
2. **Block DP.** If no line is split, a plan is a partition of the lines into blocks, each
   served whole by one location. The cheapest location for every block is found for all
   2^n blocks at once (a superset-minimum transform over each location's "lines held in
   full" bitmask, or the submasks of the few masks there are on sparse stock), then a DP
   over set partitions (at most ``max_packages`` blocks) gives the best plan. Lines that no
   location links are planned apart (connected components). Exact for plans without split
   lines; capacity, ship-together groups and the package limit hold by construction.
3. **Pairs with split lines.** Every pair among the most promising candidates whose stock
   together covers the order, each line split between them (cheaper units first): this is
   where splits beat the DP (2 units here, 1 there).
4. **Greedy cover** for the lines no single location can fill: open the location with the
   lowest cost per newly covered unit until everything is covered.
5. **Local search** from the best start, with a split-aware re-assignment (units to the
   cheapest open location with stock; a small polymatroid-greedy flow when capacity binds):
   close a package, swap one for any other candidate, or replace two by one. All moves are
   screened at once; only the most promising few are evaluated.

Costs and the strategy's criterion are folded into ``Fo``/``co`` (see ``domain``), so the
same search serves every strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from omniretail.fulfillment.domain import (
    Assignment,
    BoolArray,
    FloatArray,
    Instance,
    IntArray,
    objective,
)

DP_MAX_LINES = 10
PAIR_POOL = 30  # candidates paired up for two-package plans with split lines
INF = float("inf")


# --- block DP --------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _bits(n: int) -> IntArray:
    masks = np.arange(1 << n, dtype=np.int64)
    out: IntArray = (masks[:, None] >> np.arange(n, dtype=np.int64)[None, :]) & 1
    return out


@dataclass(frozen=True)
class _Pairs:
    """For every non-empty set S of n lines, every block B ⊆ S holding S's lowest line, as
    (B, R = S \\ B), ordered by (size of S, S): (3^n - 1) / 2 pairs. Set ``sets[i]`` owns
    pairs ``seg[i]:seg_end[i]``; ``index`` maps a set to i; sets of size p + 1 are
    ``layer[p]:layer[p + 1]``."""

    B: IntArray
    R: IntArray
    sets: IntArray
    seg: IntArray
    seg_end: IntArray
    index: IntArray
    layer: list[int]


@lru_cache(maxsize=16)
def _pairs(n: int) -> _Pairs:
    blocks: list[int] = []
    rests: list[int] = []
    sets: list[int] = []
    seg: list[int] = []
    layer = [0]
    for size in range(1, n + 1):
        for s in range(1, 1 << n):
            if s.bit_count() != size:
                continue
            sets.append(s)
            seg.append(len(blocks))
            low = s & -s
            rest = s ^ low
            sub = rest
            while True:
                blocks.append(sub | low)
                rests.append(rest ^ sub)
                if sub == 0:
                    break
                sub = (sub - 1) & rest
        layer.append(len(sets))
    index = np.zeros(1 << n, dtype=np.int64)
    index[np.array(sets, dtype=np.int64)] = np.arange(len(sets))
    starts = np.array(seg, dtype=np.int64)
    return _Pairs(
        np.array(blocks, dtype=np.int64),
        np.array(rests, dtype=np.int64),
        np.array(sets, dtype=np.int64),
        starts,
        np.r_[starts[1:], len(blocks)].astype(np.int64),
        index,
        layer,
    )


@dataclass(frozen=True)
class _Submasks:
    """Every submask of every mask of n bits: ``flat[start[v]:start[v] + count[v]]``."""

    flat: IntArray
    start: IntArray
    count: IntArray


@lru_cache(maxsize=16)
def _submasks(n: int) -> _Submasks:
    flat: list[int] = []
    start: list[int] = []
    count: list[int] = []
    for v in range(1 << n):
        start.append(len(flat))
        sub = v
        while True:
            flat.append(sub)
            if sub == 0:
                break
            sub = (sub - 1) & v
        count.append(len(flat) - start[-1])
    return _Submasks(
        np.array(flat, dtype=np.int64),
        np.array(start, dtype=np.int64),
        np.array(count, dtype=np.int64),
    )


def _full_masks(A: IntArray, q: IntArray) -> IntArray:
    """Per location: the bitmask of lines it can fill completely on its own."""
    weights = np.int64(1) << np.arange(len(q), dtype=np.int64)
    out: IntArray = (q[None, :] <= A).astype(np.int64) @ weights
    return out


def block_plan(
    inst: Instance,
    lines: Sequence[int] | None = None,
    max_blocks: int | None = None,
    bound: float = INF,
) -> Assignment | None:
    """:func:`block_dp` split into independent parts: two lines can share a block only if
    one location holds both, so the lines fall into connected components that are planned
    apart (exact without a package limit). Sparse stock makes these parts small."""
    ks = list(range(inst.n)) if lines is None else list(lines)
    if not ks or inst.m == 0:
        return None
    if max_blocks is not None and max_blocks < len(ks):
        return block_dp(inst, ks, max_blocks, bound)
    q = inst.q[ks]
    M = _full_masks(inst.A[:, ks], q)
    full = (1 << len(ks)) - 1
    comps: list[int] = []
    linked = [m for m in np.unique(M).tolist() if m & (m - 1)]
    linked += _sub_groups(inst.groups, ks)
    for mask in sorted(linked, key=int.bit_count, reverse=True):
        merged, keep = mask, []
        for c in comps:
            if c & merged:
                merged |= c
            else:
                keep.append(c)
        comps = [*keep, merged]
        if merged == full:
            break
    alone = full
    for c in comps:
        alone &= ~c
    comps += [1 << b for b in range(len(ks)) if alone >> b & 1]
    if comps == [full]:
        return block_dp(inst, ks, None, bound)
    parts = {c: [k for b, k in enumerate(ks) if c >> b & 1] for c in comps}
    out: Assignment = {}
    for part in parts.values():
        if len(part) == 1:
            k = part[0]
            ok = (inst.A[:, k] >= inst.q[k]) & (inst.cap >= inst.q[k])
            if not ok.any():
                return None
            cost = np.where(ok, inst.Fo + inst.co * float(inst.q[k]), INF)
            j = int(np.argmin(cost))
            x = np.zeros(inst.n, dtype=np.int64)
            x[k] = inst.q[k]
            found: Assignment | None = {j: x}
        else:
            found = block_dp(inst, part)
        if found is None:
            return None
        if set(found) & set(out):  # cannot happen (see above); stay safe
            return block_dp(inst, ks, max_blocks)
        out.update(found)
    return out


def block_dp(
    inst: Instance,
    lines: Sequence[int] | None = None,
    max_blocks: int | None = None,
    bound: float = INF,
) -> Assignment | None:
    """The best no-split plan for ``lines`` (default all) with at most ``max_blocks``
    packages, or None if there is none. With ``bound`` (the cost of a known one-package
    plan), only plans with several packages below it are searched."""
    ks = list(range(inst.n)) if lines is None else list(lines)
    n = len(ks)
    if n == 0 or n > DP_MAX_LINES or inst.m == 0:
        return None
    q = inst.q[ks]
    A = inst.A[:, ks]
    M = _full_masks(A, q)
    rows = np.nonzero(M)[0]
    if len(rows) == 0:
        return None
    if bound < INF and len(rows) > 2:
        # A location can be part of a plan cheaper than ``bound`` (one with two or more
        # packages: one-package plans are known) only if it and the cheapest other package
        # plus the cheapest units stay below it.
        fo = inst.Fo[rows]
        two = np.partition(fo, 1)[:2]
        other = np.where(fo == two[0], two[1], two[0])
        keep = fo + other + float(q.sum()) * float(inst.co[rows].min()) < bound
        rows = rows[keep]
        if len(rows) == 0:
            return None
    size = 1 << n
    full = size - 1
    bits = _bits(n)
    u = bits @ q
    present = np.zeros(int(u[full]) + 1, dtype=bool)
    present[u] = True
    D = np.flatnonzero(present)
    d_index = (np.cumsum(present) - 1)[u]
    costs = inst.Fo[rows, None] + inst.co[rows, None] * D[None, :]
    costs[inst.cap[rows, None] < D[None, :]] = INF
    order = np.argsort(M[rows], kind="stable")
    by_mask = M[rows][order]
    starts = np.flatnonzero(np.r_[True, by_mask[1:] != by_mask[:-1]])
    distinct = by_mask[starts]
    per_mask = np.minimum.reduceat(costs[order], starts, axis=0)  # (masks, D)
    sub = _submasks(n)
    counts = sub.count[distinct]
    work = int(counts.sum())
    if work <= size:  # few, small masks (sparse stock): enumerate their submasks
        first = np.repeat(sub.start[distinct] - np.cumsum(counts) + counts, counts)
        blocks_of = sub.flat[first + np.arange(work)]
        owner = np.repeat(np.arange(len(distinct)), counts)
        best = np.full(size, INF)
        np.minimum.at(best, blocks_of, per_mask[owner, d_index[blocks_of]])
    else:
        T = np.full((size, len(D)), INF)
        T[distinct] = per_mask
        for i in range(n):  # superset minimum: T[B] = min over masks M ⊇ B
            view = T.reshape(size >> (i + 1), 2, 1 << i, len(D))
            np.minimum(view[:, 0], view[:, 1], out=view[:, 0])
        best = T[np.arange(size), d_index]
    masks = np.arange(size, dtype=np.int64)
    for g in _sub_groups(inst.groups, ks):
        part = masks & g
        best[(part != 0) & (part != g)] = INF
    P = _pairs(n)
    B, R, seg, sets, seg_end, segment_of, layer = (
        P.B,
        P.R,
        P.seg,
        P.sets,
        P.seg_end,
        P.index,
        P.layer,
    )
    best_b = best[B]
    unlimited = max_blocks is None or max_blocks >= n
    if unlimited:
        # Sets in order of size: a set's rests are smaller, so one pass suffices.
        dp = np.full(size, INF)
        dp[0] = 0.0
        for p in range(n):
            s0, s1 = layer[p], layer[p + 1]
            lo, hi = int(seg[s0]), int(seg_end[s1 - 1])
            cand = best_b[lo:hi] + dp[R[lo:hi]]
            dp[sets[s0:s1]] = np.minimum.reduceat(cand, seg[s0:s1] - lo)
        levels = [dp]
    else:
        assert max_blocks is not None
        levels = [np.full(size, INF)]
        levels[0][0] = 0.0
        for _ in range(max_blocks):
            prev = levels[-1]
            level = np.full(size, INF)
            level[0] = 0.0
            level[sets] = np.minimum.reduceat(best_b + prev[R], seg)
            levels.append(level)
            if np.array_equal(level, prev):
                break
    if not np.isfinite(levels[-1][full]):
        return None
    chosen: list[int] = []
    s = full
    k = len(levels) - 1
    while s:
        i = int(segment_of[s])
        lo, hi = int(seg[i]), int(seg_end[i])
        rest_values = levels[0] if unlimited else levels[k - 1]
        pick = lo + int(np.argmin(best_b[lo:hi] + rest_values[R[lo:hi]]))
        chosen.append(int(B[pick]))
        s = int(R[pick])
        k -= 1
    # Each block to its cheapest location (one package per location).
    blocks = np.array(chosen, dtype=np.int64)
    ub = u[blocks].astype(np.float64)
    held = (M[rows][None, :] & blocks[:, None]) == blocks[:, None]
    held &= inst.cap[rows][None, :] >= ub[:, None]
    cost = np.where(held, inst.Fo[rows][None, :] + inst.co[rows][None, :] * ub[:, None], INF)
    picks = np.argmin(cost, axis=1)
    if len(set(picks.tolist())) < len(picks):  # two blocks want one location: go in turn
        taken: list[int] = []
        for b in np.argsort(-ub, kind="stable").tolist():
            cost[b, taken] = INF
            picks[b] = int(np.argmin(cost[b]))
            taken.append(int(picks[b]))
    if not np.isfinite(cost[np.arange(len(blocks)), picks]).all():
        return None
    out: Assignment = {}
    for block, pos in zip(chosen, picks.tolist(), strict=True):
        x = np.zeros(inst.n, dtype=np.int64)
        for b, k in enumerate(ks):
            if block >> b & 1:
                x[k] = inst.q[k]
        out[int(rows[pos])] = x
    return out


def _sub_groups(groups: Sequence[int], ks: Sequence[int]) -> list[int]:
    """Group masks re-indexed to the sub-problem of lines ``ks``."""
    out = []
    for g in groups:
        sub = 0
        for b, k in enumerate(ks):
            if g >> k & 1:
                sub |= 1 << b
        if sub:
            out.append(sub)
    return out


# --- assignment for a set of open locations --------------------------------------------------


def _group_lines(inst: Instance) -> list[list[int]]:
    return inst.group_lines


def assign(
    inst: Instance, open_rows: Sequence[int], demand: IntArray | None = None
) -> Assignment | None:
    """The cheapest way to fill ``demand`` (default: every line) from the open locations
    only, lines may split unless grouped; None if they cannot fill it. Locations that end up
    with nothing are left out. (Plain lists: the open set is small, numpy calls cost more.)"""
    js = list(dict.fromkeys(int(j) for j in open_rows))
    if not js:
        return None
    q: list[int] = (inst.q if demand is None else demand).tolist()
    n = inst.n
    k = len(js)
    A: list[list[int]] = inst.A[js].tolist()
    cap: list[int] = inst.cap[js].tolist()
    co: list[float] = inst.co[js].tolist()
    x = [[0] * n for _ in range(k)]
    grouped = [False] * n
    todo = []
    for idx in inst.group_lines:
        total = 0
        for t in idx:
            grouped[t] = True
            total += q[t]
        if total:
            ok = [i for i in range(k) if all(A[i][t] >= q[t] for t in idx)]
            todo.append((len(ok), idx, total, ok))
    todo.sort(key=lambda item: item[0])
    for _, idx, total, ok in todo:
        pick = -1
        for i in ok:
            if cap[i] >= total and (pick < 0 or co[i] < co[pick]):
                pick = i
        if pick < 0:
            return None
        for t in idx:
            x[pick][t] = q[t]
        cap[pick] -= total
    free = [t for t in range(n) if not grouped[t] and q[t] > 0]
    if free:
        if any(sum(min(A[i][t], q[t]) for t in free) > cap[i] for i in range(k)):
            flows = _min_cost_flow(
                [[A[i][t] for t in free] for i in range(k)], [q[t] for t in free], cap, co
            )
            if flows is None:
                return None
            for i in range(k):
                for f, t in enumerate(free):
                    x[i][t] = flows[i][f]
        else:
            order = sorted(range(k), key=co.__getitem__)
            for t in free:
                need = q[t]
                for i in order:
                    take = A[i][t] if A[i][t] < need else need
                    if take > 0:
                        x[i][t] += take
                        need -= take
                        if need == 0:
                            break
                if need:
                    return None
    return {js[i]: np.array(x[i], dtype=np.int64) for i in range(k) if any(x[i])}


def _min_cost_flow(
    a: list[list[int]], demand: list[int], cap: list[int], cost: list[float]
) -> list[list[int]] | None:
    """Lines -> locations flow meeting ``demand`` within the cell limits ``a`` and location
    capacities ``cap`` at the least cost, when the cost per unit depends on the location only.

    The loads a set of locations can take form a polymatroid, so the greedy is optimal: add
    locations cheapest first and push as much as possible into each new one along augmenting
    paths (which may re-route units among the cheaper locations already added)."""
    k, n = len(a), len(demand)
    x = [[0] * n for _ in range(k)]
    left = list(demand)
    room = list(cap)
    added: list[int] = []
    for j in sorted(range(k), key=cost.__getitem__):
        added.append(j)
        while room[j] > 0 and any(left):
            # BFS from lines with units left; line -> location (spare cell), location ->
            # line (units already there, re-routed elsewhere). Stop at location j.
            via_line: dict[int, int] = {}  # line -> location it is re-routed from (-1: source)
            via_loc: dict[int, int] = {}  # location -> line that moves into it
            frontier = [s for s in range(n) if left[s] > 0]
            for s in frontier:
                via_line[s] = -1
            found = False
            while frontier and not found:
                nxt: list[int] = []
                for s in frontier:
                    for loc in added:
                        if loc in via_loc or a[loc][s] - x[loc][s] <= 0:
                            continue
                        via_loc[loc] = s
                        if loc == j:
                            found = True
                            break
                        for s2 in range(n):
                            if x[loc][s2] > 0 and s2 not in via_line:
                                via_line[s2] = loc
                                nxt.append(s2)
                    if found:
                        break
                frontier = nxt
            if not found:
                break
            push = room[j]
            loc = j
            while True:
                s = via_loc[loc]
                push = min(push, a[loc][s] - x[loc][s])
                back = via_line[s]
                if back < 0:
                    push = min(push, left[s])
                    break
                push = min(push, x[back][s])
                loc = back
            loc = j
            while True:
                s = via_loc[loc]
                x[loc][s] += push
                back = via_line[s]
                if back < 0:
                    left[s] -= push
                    break
                x[back][s] -= push
                loc = back
            room[j] -= push
        if not any(left):
            break
    if any(left):
        return None
    return x


# --- greedy cover and local search -----------------------------------------------------------


def greedy(
    inst: Instance,
    start: Sequence[int] = (),
    demand: IntArray | None = None,
    max_open: int | None = None,
) -> list[int]:
    """Open locations by lowest cost per newly covered unit until ``demand`` is covered (or
    nothing more can be covered, or ``max_open`` locations are open)."""
    q = inst.q if demand is None else demand
    r = q.copy()
    cap = inst.cap.copy()
    opened: list[int] = []
    is_open = np.zeros(inst.m, dtype=bool)
    groups = _group_lines(inst)
    free = np.ones(inst.n, dtype=bool)
    for idx in groups:
        free[idx] = False

    def take(j: int) -> None:
        opened.append(j)
        is_open[j] = True
        for idx in groups:
            need = r[idx]
            if need.sum() and (inst.A[j, idx] >= need).all() and cap[j] >= need.sum():
                cap[j] -= int(need.sum())
                r[idx] = 0
        for k in np.nonzero(free & (r > 0))[0]:
            t = int(min(inst.A[j, k], r[k], cap[j]))
            r[k] -= t
            cap[j] -= t

    for j in start:
        take(int(j))
    while r.any() and (max_open is None or len(opened) < max_open):
        cover = np.minimum(inst.A[:, free], r[free][None, :]).sum(axis=1)
        for idx in groups:
            need = r[idx]
            total = int(need.sum())
            if total:
                cover = cover + total * (inst.A[:, idx] >= need[None, :]).all(axis=1)
        cover = np.minimum(cover, cap)
        cover[is_open] = 0
        if not cover.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(cover > 0, (inst.Fo + inst.co * cover) / cover, INF)
        take(int(np.argmin(ratio)))
    return opened


def improve(
    inst: Instance,
    current: Assignment,
    demand: IntArray | None = None,
    swaps: bool = True,
    max_packages: int | None = None,
    rounds: int = 6,
    tries: int = 6,
    budget: int = 16,
) -> Assignment:
    """Local search from ``current``: close a package, swap one package for any other
    candidate, or replace two packages by one candidate, re-assigning units (splits allowed)
    each time. All moves are screened at once (vectorised): the remaining locations must hold
    the demand, and an optimistic saving bound must be positive; the ``tries`` best-bounded
    moves per round (``budget`` in all) are evaluated exactly, the first improvement taken."""
    q = inst.q if demand is None else demand
    best = assign(inst, list(current), q) or current
    best_val = objective(inst, best)
    everyone = np.arange(inst.m)
    A_all = np.minimum(inst.A, q[None, :])
    useful = (A_all.sum(axis=1) > 0) & (inst.cap > 0)
    for _ in range(rounds):
        opened = np.array(sorted(best), dtype=np.int64)
        k = len(opened)
        AO = A_all[opened]
        total = AO.sum(axis=0)
        units = np.array([best[int(j)] for j in opened]).sum(axis=1).astype(np.float64)
        load = inst.Fo[opened] + inst.co[opened] * units
        co_open = inst.co[opened]
        gains: list[FloatArray] = []
        kinds: list[tuple[str, Any]] = []
        without_one = total[None, :] - AO  # (k, n)
        if k > 1:
            ok = (without_one >= q[None, :]).all(axis=1)
            two = np.partition(co_open, 1)[:2]
            co_rest = np.where(co_open == two[0], two[1], two[0])
            gains.append(np.where(ok, load - co_rest * units, -INF))
            kinds.append(("drop", None))
        if swaps:
            candidate = useful.copy()
            candidate[opened] = False
            candidate &= inst.Fo < load.max() + (load.sum() if k >= 2 else 0.0)
            extra = everyone[candidate]
            if len(extra):
                AE = A_all[extra]
                co_min = np.minimum(inst.co[extra][:, None], co_open.min())
                fo_e = inst.Fo[extra][:, None]
                cover1 = ((without_one[None, :, :] + AE[:, None, :]) >= q).all(axis=2)
                gain1 = load[None, :] - fo_e - co_min * units[None, :]
                gains.append(np.where(cover1, gain1, -INF).ravel())
                kinds.append(("swap", (extra, k)))
                if k >= 2:
                    ii, ll = np.triu_indices(k, 1)
                    without_two = total[None, :] - AO[ii] - AO[ll]
                    cover2 = ((without_two[None, :, :] + AE[:, None, :]) >= q).all(axis=2)
                    gain2 = (load[ii] + load[ll])[None, :] - fo_e - co_min * (units[ii] + units[ll])
                    gains.append(np.where(cover2, gain2, -INF).ravel())
                    kinds.append(("two", (extra, ii, ll)))
        if not gains:
            break
        flat = np.concatenate(gains)
        positive = int((flat > 1e-9).sum())
        if positive == 0:
            break
        take = min(tries, positive)
        top = np.argpartition(-flat, take - 1)[:take]
        top = top[np.argsort(-flat[top], kind="stable")]
        offsets = np.cumsum([0, *[len(g) for g in gains]])
        improved = False
        for index in top.tolist():
            if budget <= 0:
                break
            part = int(np.searchsorted(offsets, index, side="right")) - 1
            kind, info = kinds[part]
            local = index - int(offsets[part])
            rows = [int(j) for j in opened]
            if kind == "drop":
                rows.pop(local)
            elif kind == "swap":
                extra_rows, width = info
                e, i = divmod(local, width)
                rows[i] = int(extra_rows[e])
            else:
                extra_rows, ii, ll = info
                e, p = divmod(local, len(ii))
                rows = [r for x, r in enumerate(rows) if x not in (ii[p], ll[p])]
                rows.append(int(extra_rows[e]))
            if max_packages is not None and len(rows) > max_packages:
                continue
            budget -= 1
            trial = assign(inst, rows, q)
            if trial is None:
                continue
            val = objective(inst, trial)
            if val < best_val - 1e-9:
                best, best_val = trial, val
                improved = True
                break
        if not improved:
            break
    return best


# --- entry points ----------------------------------------------------------------------------


def solve(
    inst: Instance, demand: IntArray | None = None, max_packages: int | None = None
) -> Assignment | None:
    """The heuristic's plan for ``demand`` (default: every line in full), or None."""
    if inst.m == 0:
        return None
    q = inst.q if demand is None else demand
    wanted = [k for k in range(inst.n) if q[k] > 0]
    if not wanted:
        return {}
    kmax = max_packages if max_packages is not None else inst.problem.constraints.max_packages
    sub = _restricted(inst, q)
    units = float(q.sum())
    fo_low = np.sort(np.partition(sub.Fo, min(2, sub.m - 1))[: min(3, sub.m)])
    unit_floor = units * float(sub.co.min())

    def beats_more_packages(value: float, packages: int) -> bool:
        """No plan with ``packages`` + 1 or more packages can be cheaper than ``value``."""
        if packages >= sub.m:
            return True
        return value <= float(fo_low[: packages + 1].sum()) + unit_floor + 1e-9

    candidates: list[tuple[Assignment, bool]] = []  # (plan, exact among no-split plans)
    # 1. One location, proven best when no plan with two packages can cost less.
    single = single_location(sub)
    bound = INF
    if single is not None:
        bound = objective(inst, single)
        if beats_more_packages(bound, 1):
            return single
        candidates.append((single, True))
    # 2. Two locations with lines split between them; proven when three cannot do better.
    if kmax is None or kmax >= 2:
        pairs, every_pair = best_pairs(sub, q, bound)
        candidates.extend((pair, False) for pair in pairs)
        if (
            pairs
            and (every_pair or single is not None)
            and beats_more_packages(objective(inst, pairs[0]), 2)
        ):
            return _best(inst, candidates, kmax)
    # 3. The block DP (no split lines), extended greedily to lines no location fills alone.
    M = _full_masks(sub.A[:, wanted], q[wanted])
    held = int(np.bitwise_or.reduce(M)) if len(M) else 0
    coverable = [k for b, k in enumerate(wanted) if held >> b & 1]
    everything = len(coverable) == len(wanted)
    if single is None and candidates:
        bound = min(objective(inst, c) for c, _ in candidates)
    plan = block_plan(sub, coverable, kmax, bound if everything else INF)
    if plan is not None and everything:
        candidates.append((plan, True))
        if _capacity_tight(sub, plan):
            trial = assign(inst, greedy(inst, demand=q), q)
            if trial is not None:
                candidates.append((trial, False))
    elif plan is not None:
        trial = assign(inst, greedy(inst, start=list(plan), demand=q), q)
        if trial is not None:
            candidates.append((trial, False))
    if not candidates:
        trial = assign(inst, greedy(inst, demand=q), q)
        if trial is not None:
            candidates.append((trial, False))
    # 4. Local search from the best start.
    start = _best(inst, candidates, kmax)
    if start is None:
        return None
    exact_blocks = any(c is start and e for c, e in candidates)
    tight = _capacity_tight(sub, start)
    if len(start) <= 2 and not tight:
        return start  # plans of one and two packages were searched above, splits included
    if exact_blocks and not tight and not _splittable(sub, start):
        return improve(inst, start, q, False, kmax)  # only closing a package can help
    effort = 3 if tight else 1
    return improve(inst, start, q, True, kmax, rounds=2 * effort, tries=3, budget=5 * effort)


def _best(
    inst: Instance, candidates: list[tuple[Assignment, bool]], kmax: int | None
) -> Assignment | None:
    feasible = [c for c, _ in candidates if kmax is None or len(c) <= kmax]
    return min(feasible, key=lambda c: objective(inst, c)) if feasible else None


def _splittable(inst: Instance, plan: Assignment | None = None) -> bool:
    """Whether splitting a line could pay: some location holds part (not all) of a line, and
    the plan (if given) has more than one package."""
    if plan is not None and len(plan) < 2:
        return False
    return bool(((inst.A > 0) & (inst.q[None, :] > inst.A)).any())


def best_pairs(
    inst: Instance, demand: IntArray, bound: float, keep: int = 3
) -> tuple[list[Assignment], bool]:
    """Plans from two locations that together hold every line, lines split between them
    (units to the cheaper one first), among the ``PAIR_POOL`` most promising candidates;
    the ``keep`` cheapest, re-assigned exactly (capacity, groups). ``bound``: a known plan's
    objective (pairs that cannot beat it are not tried). Also says whether every candidate
    that could be in such a pair was paired (the search was exhaustive)."""
    q = demand
    if inst.m < 2:
        return [], True
    lines_held = ((inst.A > 0) & (q > 0)[None, :]).sum(axis=1)
    if np.partition(lines_held, inst.m - 2)[-2:].sum() < int((q > 0).sum()):
        return [], True  # no two locations hold every line between them
    cover = np.minimum(np.minimum(inst.A, q[None, :]).sum(axis=1), inst.cap)
    units = float(q.sum())
    fo_min = np.partition(inst.Fo, 1)[:2] if inst.m > 1 else inst.Fo
    floor = inst.Fo + float(fo_min.max()) + units * float(inst.co.min())
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((cover > 0) & (floor < bound), (inst.Fo + inst.co * cover) / cover, INF)
    promising = int(np.isfinite(ratio).sum())
    size = min(PAIR_POOL, promising)
    exhaustive = promising <= PAIR_POOL
    if size < 2:
        return [], exhaustive
    top = np.argpartition(ratio, size - 1)[:size]
    A = np.minimum(inst.A[top], q[None, :])
    i, j = np.triu_indices(size, 1)
    ok = ((A[i] + A[j]) >= q[None, :]).all(axis=1)
    ok &= inst.cap[top][i] + inst.cap[top][j] >= units
    if not ok.any():
        return [], exhaustive
    i, j = i[ok], j[ok]
    co = inst.co[top]
    first = np.where(co[i] <= co[j], i, j)
    second = np.where(co[i] <= co[j], j, i)
    cap = inst.cap[top]
    units_first = np.minimum(A[first].sum(axis=1), cap[first]).astype(np.float64)
    units_second = units - units_first
    cost = inst.Fo[top][first] + co[first] * units_first
    second_cost = inst.Fo[top][second] + co[second] * units_second
    cost = cost + np.where((units_second > 0) & (units_second <= cap[second]), second_cost, INF)
    order = np.argsort(cost, kind="stable")[:keep]
    out: list[Assignment] = []
    for rank, p in enumerate(order):
        if not np.isfinite(cost[p]) or cost[p] >= bound:
            break
        found = assign(inst, [int(top[first[p]]), int(top[second[p]])], q)
        if found is None:
            continue
        out.append(found)
        if rank == 0 and abs(objective(inst, found) - float(cost[p])) < 1e-6:
            # The cheapest estimate held once capacity and groups were applied exactly:
            # it is the best pair among the candidates.
            return out, exhaustive
    out.sort(key=lambda a: objective(inst, a))
    return out, False


def _capacity_tight(inst: Instance, plan: Assignment) -> bool:
    """Whether capacity may have kept the block DP from a better plan with split lines: a
    location of the plan is full."""
    return any(int(x.sum()) >= int(inst.cap[j]) for j, x in plan.items()) and len(plan) > 1


def _restricted(inst: Instance, demand: IntArray) -> Instance:
    """The instance with quantities replaced by ``demand`` (for partial plans)."""
    if demand is inst.q or np.array_equal(demand, inst.q):
        return inst
    return replace(inst, q=demand, A=np.minimum(inst.A, demand[None, :]))


def nearest_first(inst: Instance) -> Assignment | None:
    """The peers' rule, as a baseline: every line from the nearest location that has it,
    moving on to the next nearest for what is left (capacity respected)."""
    order = np.argsort(inst.dist, kind="stable")
    cap = inst.cap.copy()
    x = np.zeros((inst.m, inst.n), dtype=np.int64)
    for k in range(inst.n):
        need = int(inst.q[k])
        for j in order:
            if need == 0:
                break
            t = int(min(inst.A[j, k], need, cap[j]))
            if t > 0:
                x[j, k] += t
                cap[j] -= t
                need -= t
        if need:
            return None
    return {int(j): x[j] for j in np.nonzero(x.any(axis=1))[0]}


def single_location(inst: Instance) -> Assignment | None:
    """The best plan from one location alone, or None."""
    if inst.m == 0:
        return None
    units = int(inst.q.sum())
    ok: BoolArray = (inst.q[None, :] <= inst.A).all(axis=1) & (inst.cap >= units)
    if not ok.any():
        return None
    cost = np.where(ok, inst.Fo + inst.co * units, INF)
    j = int(np.argmin(cost))
    return {j: inst.q.copy()}
