"""The exact sourcing solver: a mixed-integer programme solved by HiGHS.

Variables over the eligible candidates ``j`` of an :class:`Instance`:

* ``y[j]`` binary: a package leaves location ``j``;
* ``x[j, k]`` integer in ``[0, A[j, k]]``: units of free line ``k`` from ``j``;
* ``z[g, j]`` binary: ship-together group ``g`` (or an unsplittable line) leaves from ``j``
  whole (only for locations that hold all of it).

Constraints: every line is filled (``<=`` when partial plans are wanted), ``x <= A * y``,
``z <= y``, units per location ``<= remaining capacity * y``, ``sum(y) <= max_packages``.

Objectives are solved lexicographically in phases, each fixing the optimum of the one
before: (partial only) most units, then the strategy's criterion (unit-km, packages, units
not from stores/warehouses), then the true cost ``sum(F y) + sum(c * units)``. Costs are
integers, so an absolute gap below one proves the cost optimal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from omniretail.fulfillment.domain import Assignment, FloatArray, Instance, IntArray


@dataclass(frozen=True)
class ExactResult:
    assignment: Assignment | None
    status: str  # optimal | infeasible | time_limit | error
    cost: int | None  # true plan cost (split penalty included) when a plan was found
    seconds: float
    gap: float | None = None  # relative MIP gap of the last phase


class _Model:
    def __init__(self, inst: Instance, demand: IntArray, partial: bool, max_packages: int | None):
        self.inst = inst
        m, n = inst.m, inst.n
        self.demand = demand
        groups = [[k for k in range(n) if g >> k & 1] for g in inst.groups]
        in_group = np.zeros(n, dtype=bool)
        for idx in groups:
            in_group[idx] = True
        free = [k for k in range(n) if not in_group[k] and demand[k] > 0]
        A = np.minimum(inst.A, demand[None, :])
        # columns: y, then x cells, then z cells
        self.x_cells = [(j, k) for k in free for j in np.nonzero(A[:, k] > 0)[0].tolist()]
        self.z_cells: list[tuple[int, int]] = []  # (group index, j)
        self.groups = [idx for idx in groups if demand[idx].sum() > 0]
        for g, idx in enumerate(self.groups):
            ok = (A[:, idx] >= demand[idx][None, :]).all(axis=1)
            self.z_cells.extend((g, int(j)) for j in np.nonzero(ok)[0])
        nx, nz = len(self.x_cells), len(self.z_cells)
        self.ncols = m + nx + nz
        self.x0, self.z0 = m, m + nx
        xj = np.array([j for j, _ in self.x_cells], dtype=np.int64)
        xk = np.array([k for _, k in self.x_cells], dtype=np.int64)
        zg = np.array([g for g, _ in self.z_cells], dtype=np.int64)
        zj = np.array([j for _, j in self.z_cells], dtype=np.int64)
        gsize = np.array([int(demand[idx].sum()) for idx in self.groups], dtype=np.int64)
        zu = gsize[zg] if nz else np.zeros(0, dtype=np.int64)
        self.col_loc = np.concatenate([np.arange(m), xj, zj]).astype(np.int64)
        self.col_units = np.concatenate([np.zeros(m), np.ones(nx), zu]).astype(np.float64)
        lower = np.zeros(self.ncols)
        upper = np.concatenate([np.ones(m), A[xj, xk].astype(np.float64), np.ones(nz)])
        rows_i: list[IntArray] = []
        rows_j: list[IntArray] = []
        vals: list[FloatArray] = []
        row_lo: list[float] = []
        row_hi: list[float] = []
        r = 0

        def add(cols: IntArray, coefs: FloatArray, lo: float, hi: float) -> None:
            nonlocal r
            rows_i.append(np.full(len(cols), r, dtype=np.int64))
            rows_j.append(cols.astype(np.int64))
            vals.append(coefs.astype(np.float64))
            row_lo.append(lo)
            row_hi.append(hi)
            r += 1

        xcols = np.arange(self.x0, self.x0 + nx)
        for k in free:
            cols = xcols[xk == k]
            add(cols, np.ones(len(cols)), 0.0 if partial else float(demand[k]), float(demand[k]))
        zcols = np.arange(self.z0, self.z0 + nz)
        for g in range(len(self.groups)):
            cols = zcols[zg == g]
            add(cols, np.ones(len(cols)), 0.0 if partial else 1.0, 1.0)
        self.demand_rows = r
        # linking x <= A y and z <= y, as one row block built vectorised
        link_n = nx + nz
        if link_n:
            link_rows = np.arange(r, r + link_n, dtype=np.int64)
            own = np.concatenate([xcols, zcols]).astype(np.int64)
            loc = np.concatenate([xj, zj]).astype(np.int64)
            coef = np.concatenate([A[xj, xk].astype(np.float64), np.ones(nz)])
            rows_i.extend([link_rows, link_rows])
            rows_j.extend([own, loc])
            vals.extend([np.ones(link_n), -coef])
            row_lo.extend([-np.inf] * link_n)
            row_hi.extend([0.0] * link_n)
            r += link_n
        potential = np.bincount(
            self.col_loc[m:], weights=self.col_units[m:] * upper[m:], minlength=m
        )
        for j in np.nonzero(inst.cap < potential)[0]:
            cols = np.concatenate([np.nonzero(self.col_loc[m:] == j)[0] + m, [j]])
            coefs = np.concatenate([self.col_units[cols[:-1]], [-float(inst.cap[j])]])
            add(cols.astype(np.int64), coefs, -np.inf, 0.0)
        if max_packages is not None and max_packages < m:
            add(np.arange(m, dtype=np.int64), np.ones(m), -np.inf, float(max_packages))
        self.h = highspy.Highs()
        self.h.silent()
        lp = highspy.HighsLp()
        lp.num_col_ = self.ncols
        lp.num_row_ = r
        lp.col_cost_ = np.zeros(self.ncols)
        lp.col_lower_ = lower
        lp.col_upper_ = upper
        lp.row_lower_ = np.array(row_lo, dtype=np.float64)
        lp.row_upper_ = np.array(row_hi, dtype=np.float64)
        ri = np.concatenate(rows_i) if rows_i else np.zeros(0, dtype=np.int64)
        cj = np.concatenate(rows_j) if rows_j else np.zeros(0, dtype=np.int64)
        vv = np.concatenate(vals) if vals else np.zeros(0)
        order = np.lexsort((ri, cj))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.concatenate(
            [[0], np.cumsum(np.bincount(cj, minlength=self.ncols))]
        ).astype(np.int32)
        lp.a_matrix_.index_ = ri[order].astype(np.int32)
        lp.a_matrix_.value_ = vv[order]
        lp.integrality_ = [highspy.HighsVarType.kInteger] * self.ncols
        self.h.passModel(lp)
        self.h.setOptionValue("mip_rel_gap", 0.0)

    def costs(self, per_package: FloatArray, per_unit: FloatArray) -> FloatArray:
        m = self.inst.m
        out = self.col_units * per_unit[self.col_loc]
        out[:m] = per_package
        return out

    def solve(self, cost: FloatArray, abs_gap: float, deadline: float) -> tuple[str, FloatArray]:
        h = self.h
        h.changeColsCost(self.ncols, np.arange(self.ncols, dtype=np.int32), cost)
        h.setOptionValue("mip_abs_gap", abs_gap)
        h.setOptionValue("time_limit", max(0.01, deadline - time.perf_counter()))
        h.run()
        status = h.getModelStatus()
        values = np.array(h.getSolution().col_value) if h.getInfo().primal_solution_status else None
        if status == highspy.HighsModelStatus.kOptimal and values is not None:
            return "optimal", values
        if status == highspy.HighsModelStatus.kInfeasible:
            return "infeasible", np.zeros(0)
        if values is not None and len(values) == self.ncols:
            return "time_limit", values
        return "time_limit" if status == highspy.HighsModelStatus.kTimeLimit else "error", np.zeros(
            0
        )

    def bound(self, cost: FloatArray, value: float) -> None:
        cols = np.nonzero(cost)[0].astype(np.int32)
        self.h.addRow(-np.inf, value, len(cols), cols, cost[cols])

    def assignment(self, values: FloatArray) -> Assignment:
        inst = self.inst
        x = np.zeros((inst.m, inst.n), dtype=np.int64)
        v = np.rint(values).astype(np.int64)
        for c, (j, k) in enumerate(self.x_cells):
            x[j, k] += v[self.x0 + c]
        for c, (g, j) in enumerate(self.z_cells):
            if v[self.z0 + c] > 0:
                for k in self.groups[g]:
                    x[j, k] += int(self.demand[k])
        return {int(j): x[j] for j in np.nonzero(x.any(axis=1))[0]}


def solve_exact(
    inst: Instance,
    demand: IntArray | None = None,
    *,
    partial: bool = False,
    max_packages: int | None = None,
    use_max_packages: bool = True,
    time_limit: float = 10.0,
) -> ExactResult:
    """Solve to optimality (or until ``time_limit`` seconds). ``partial``: fill as many units
    as possible first. ``max_packages`` defaults to the problem's constraint."""
    started = time.perf_counter()
    deadline = started + time_limit
    q = inst.q if demand is None else demand
    if use_max_packages and max_packages is None:
        max_packages = inst.problem.constraints.max_packages
    if inst.m == 0 or not q.any():
        status = "optimal" if not q.any() or partial else "infeasible"
        plan: Assignment | None = {} if status == "optimal" else None
        return ExactResult(plan, status, 0 if plan is not None else None, 0.0)
    model = _Model(inst, q, partial, max_packages)
    zeros = np.zeros(inst.m)
    phases: list[tuple[FloatArray, float]] = []
    if partial:
        phases.append((-model.costs(zeros, np.ones(inst.m)), 0.5))
    if inst.weight:
        phases.append((model.costs(inst.prim_pkg, inst.prim_unit), 1e-6))
    phases.append((model.costs(inst.F.astype(np.float64), inst.c.astype(np.float64)), 0.5))
    values = np.zeros(0)
    status = "optimal"
    for i, (cost, gap) in enumerate(phases):
        phase_status, found = model.solve(cost, gap, deadline)
        if phase_status in ("infeasible", "error"):
            return ExactResult(None, phase_status, None, time.perf_counter() - started)
        if len(found):
            values = found
        if phase_status != "optimal":
            status = phase_status
            break
        if i < len(phases) - 1:
            best = float(cost @ values)
            model.bound(cost, best + max(gap, 1e-9 * abs(best)))
    if not len(values):
        return ExactResult(None, status, None, time.perf_counter() - started)
    assignment = model.assignment(values)
    cost_total = sum(int(inst.F[j]) + int(inst.c[j]) * int(x.sum()) for j, x in assignment.items())
    if assignment:
        cost_total -= inst.split_penalty
    gap_info = model.h.getInfo().mip_gap
    return ExactResult(
        assignment,
        status,
        cost_total,
        time.perf_counter() - started,
        float(gap_info) if np.isfinite(gap_info) else None,
    )
