"""Pure rules of the analytics context: line classification, KPI arithmetic, RFM scoring and
segments, demand classification and replenishment math. No I/O, no ORM."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

import numpy as np
from scipy.stats import norm

from omniretail.core.money import round_half_up


class Kind(StrEnum):
    SALE = "sale"
    RETURN = "return"


class LineType(StrEnum):
    PRODUCT = "product"
    SERVICE = "service"  # postage, fees, manual corrections, discounts, vouchers
    ADJUSTMENT = "adjustment"  # zero-price stock corrections (no customer, no money)


# Online Retail StockCodes that are not merchandise: postage (POST, DOT, C2 carriage),
# manual lines (M), discounts (D), samples (S), bad-debt adjustments (B), bank and marketplace
# fees, CRUK commission; gift vouchers are ``gift_0001_<value>``.
SERVICE_CODES = frozenset(
    {"POST", "DOT", "C2", "M", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"}
)
VOUCHER_PATTERN = r"gift_\d+_\d+"
_VOUCHER = re.compile(VOUCHER_PATTERN, re.IGNORECASE)


def is_service_code(stock_code: str) -> bool:
    code = stock_code.strip()
    return code.upper() in SERVICE_CODES or bool(_VOUCHER.fullmatch(code))


# --- KPI arithmetic -------------------------------------------------------------------------


def rate(numerator: int, denominator: int) -> float | None:
    """A share rounded to 6 decimals, or ``None`` when there is nothing to divide by."""
    if denominator == 0:
        return None
    return round(numerator / denominator, 6)


def average_minor(total_minor: int, count: int) -> int | None:
    """An average amount in minor units, rounded half-up (``core.money``), e.g. AOV."""
    if count == 0:
        return None
    return round_half_up(Fraction(total_minor, count))


# --- RFM ------------------------------------------------------------------------------------


def quintile_scores(values: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """Scores 1–5 by rank: ``1 + ⌊5·(r − 1) / n⌋`` where ``r`` is the lowest (1-based) rank of
    the value, so equal values always share a score (the lowest of their block). With
    ``higher_is_better=False`` (recency in days) the smallest value scores 5."""
    arr = np.asarray(values, dtype=float)
    n = len(arr)
    if n == 0:
        return []
    keyed = arr if higher_is_better else -arr
    ordered = np.sort(keyed)
    rank_min = np.searchsorted(ordered, keyed, side="left") + 1
    return [int(s) for s in 1 + (5 * (rank_min - 1)) // n]


# The R×F grid of named segments (R score, F score) → segment.
RF_SEGMENTS: tuple[tuple[str, str, str], ...] = (
    # (R scores, F scores, segment)
    ("12", "12", "hibernating"),
    ("12", "34", "at_risk"),
    ("12", "5", "cannot_lose_them"),
    ("3", "12", "about_to_sleep"),
    ("3", "3", "need_attention"),
    ("34", "45", "loyal"),
    ("4", "1", "promising"),
    ("5", "1", "new_customers"),
    ("45", "23", "potential_loyalists"),
    ("5", "45", "champions"),
)
SEGMENTS = tuple(dict.fromkeys(s for _, _, s in RF_SEGMENTS))


def rfm_segment(r: int, f: int) -> str:
    for r_scores, f_scores, name in RF_SEGMENTS:
        if str(r) in r_scores and str(f) in f_scores:
            return name
    raise ValueError(f"scores out of range: R={r}, F={f}")


# --- demand classification (Syntetos–Boylan) ------------------------------------------------

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49


class DemandClass(StrEnum):
    SMOOTH = "smooth"
    ERRATIC = "erratic"
    INTERMITTENT = "intermittent"
    LUMPY = "lumpy"
    NONE = "no_demand"


@dataclass(frozen=True)
class DemandProfile:
    adi: float  # average inter-demand interval: periods / periods with demand
    cv2: float  # squared coefficient of variation of the non-zero demand sizes
    demand_class: DemandClass


def classify_demand(y: Sequence[float]) -> DemandProfile:
    arr = np.asarray(y, dtype=float)
    nonzero = arr[arr > 0]
    if len(nonzero) == 0:
        return DemandProfile(math.inf, 0.0, DemandClass.NONE)
    adi = len(arr) / len(nonzero)
    mean = float(nonzero.mean())
    cv2 = float((nonzero.std() / mean) ** 2) if mean else 0.0
    if adi < ADI_CUTOFF:
        cls = DemandClass.SMOOTH if cv2 < CV2_CUTOFF else DemandClass.ERRATIC
    else:
        cls = DemandClass.INTERMITTENT if cv2 < CV2_CUTOFF else DemandClass.LUMPY
    return DemandProfile(adi, cv2, cls)


def seasonal_scale(insample: Sequence[float], season_length: int) -> float:
    """MASE denominator: mean absolute ``m``-step difference of the training data (the
    in-sample error of the seasonal naive forecast); 0 when it is not defined."""
    arr = np.asarray(insample, dtype=float)
    if len(arr) <= season_length:
        return 0.0
    return float(np.mean(np.abs(arr[season_length:] - arr[:-season_length])))


# --- replenishment --------------------------------------------------------------------------


def z_value(service_level: float) -> float:
    """The standard normal quantile of a cycle service level (0.95 → 1.6449)."""
    if not 0.5 <= service_level < 1:
        raise ValueError("service level must be in [0.5, 1)")
    return float(norm.ppf(service_level))


def safety_stock(sigma: float, lead_time: float, service_level: float) -> int:
    """``⌈z · σ · √L⌉``: σ is the standard deviation of one period's forecast error, ``L``
    the lead time in periods (errors of successive periods taken as independent)."""
    if sigma < 0 or lead_time < 0:
        raise ValueError("sigma and lead time cannot be negative")
    return math.ceil(round(z_value(service_level) * sigma * math.sqrt(lead_time), 9))


@dataclass(frozen=True)
class NodeStock:
    location_id: str
    on_hand: int
    reserved: int
    incoming: int
    mean_demand: float  # forecast units per period
    sigma: float  # RMSE of one-period forecast errors


@dataclass(frozen=True)
class NodePlan:
    location_id: str
    safety_stock: int
    reorder_point: int
    order_up_to: int
    inventory_position: int
    need: int  # units to reach the order-up-to level (0 unless at or below the reorder point)
    excess: int  # unreserved units above the order-up-to level that could be moved


def plan_node(
    node: NodeStock, lead_time: float, review_period: float, service_level: float
) -> NodePlan:
    """Reorder point ``ROP = ⌈μ·L⌉ + SS``, order-up-to ``S = ⌈μ·(L + R)⌉ + SS``, inventory
    position ``IP = on hand − reserved + incoming``; a node at or below its ROP needs
    ``S − IP``; a node above ``S`` may give ``min(IP − S, on hand − reserved)``."""
    ss = safety_stock(node.sigma, lead_time, service_level)
    rop = math.ceil(round(node.mean_demand * lead_time, 9)) + ss
    up_to = math.ceil(round(node.mean_demand * (lead_time + review_period), 9)) + ss
    position = node.on_hand - node.reserved + node.incoming
    need = up_to - position if position <= rop else 0
    excess = max(0, min(position - up_to, node.on_hand - node.reserved))
    return NodePlan(node.location_id, ss, rop, up_to, position, max(0, need), excess)


@dataclass(frozen=True)
class Move:
    kind: str  # transfer | purchase
    to_location_id: str
    quantity: int
    from_location_id: str | None = None


def plan_moves(plans: Sequence[NodePlan], pack_size: int = 1, min_transfer: int = 1) -> list[Move]:
    """Cover needs from other locations' excess first (largest need from largest excess; ties
    by location id), then buy the rest in multiples of ``pack_size``."""
    if pack_size < 1 or min_transfer < 1:
        raise ValueError("pack size and minimum transfer are at least 1")
    excess = {p.location_id: p.excess for p in plans if p.need == 0 and p.excess > 0}
    moves: list[Move] = []
    for plan in sorted(plans, key=lambda p: (-p.need, p.location_id)):
        need = plan.need
        if need <= 0:
            continue
        for donor in sorted(excess, key=lambda d: (-excess[d], d)):
            quantity = min(need, excess[donor])
            if quantity < min_transfer:
                continue
            moves.append(Move("transfer", plan.location_id, quantity, donor))
            excess[donor] -= quantity
            need -= quantity
            if need == 0:
                break
        if need > 0:
            moves.append(
                Move("purchase", plan.location_id, math.ceil(need / pack_size) * pack_size)
            )
    return moves


def merge_counts(*counts: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out
