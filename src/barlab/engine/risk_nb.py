"""The risk rules applied to one order: :func:`risk_target_nb`, the one definition the kernel
uses at each fill and the live bridge before each order it sends. The rules themselves are plain
data (:class:`barlab.engine.risk.RiskRules`, numba-free so that reading the config does not
load numba)."""

from __future__ import annotations

import numpy as np

from barlab.engine.jit import helper_nb
from barlab.engine.risk import (
    REASON_DAILY_LOSS_LIMIT,
    REASON_MAX_DRAWDOWN,
    REASON_MAX_OPEN_POSITIONS,
    REASON_MAX_PORTFOLIO_VALUE,
    REASON_MAX_POSITION_SIZE,
    REASON_NO_SHORTING,
)
from barlab.engine.sizing import whole_nb


@helper_nb
def _limit_increase(pos, new_pos, limit_qty):
    """Clamp ``new_pos`` so that any exposure it adds beyond ``pos`` stays within ``limit_qty``."""
    same_side = pos != 0.0 and np.sign(new_pos) == np.sign(pos)
    cap = max(limit_qty, abs(pos)) if same_side else limit_qty
    if abs(new_pos) > cap:
        return np.sign(new_pos) * cap
    return new_pos


@helper_nb
def _increases(pos, new_pos):
    return abs(new_pos) > 0.0 and (np.sign(new_pos) != np.sign(pos) or abs(new_pos) > abs(pos))


@helper_nb
def risk_target_nb(
    j, want, pos, mark, px, reason, allow_short, position_cap, max_gross, max_open, halted,
    stopped, fractional,
):  # fmt: skip
    """The position symbol ``j`` may move to when it asks for ``want`` shares at ``px``
    (dollars), under the risk rules (engine/risk.py), and the reason code of the last rule that
    limited it (``reason`` when none did). ``pos`` holds every symbol's shares and ``mark``
    their prices. The one definition of the rules: the kernel applies it at each fill and the
    live bridge before each order it sends."""
    new_pos = want
    if new_pos < 0.0 and not allow_short:
        new_pos = 0.0
        reason = REASON_NO_SHORTING
    if abs(new_pos) * px > position_cap:
        new_pos = _limit_increase(pos[j], new_pos, whole_nb(position_cap / px, fractional))
        reason = REASON_MAX_POSITION_SIZE
    if (halted or stopped) and _increases(pos[j], new_pos):
        new_pos = pos[j] if np.sign(new_pos) == np.sign(pos[j]) else 0.0
        reason = REASON_MAX_DRAWDOWN if stopped else REASON_DAILY_LOSS_LIMIT
    m = pos.shape[0]
    if pos[j] == 0.0 and new_pos != 0.0:
        n_open = 0
        for k in range(m):
            if pos[k] != 0.0:
                n_open += 1
        if n_open >= max_open:
            new_pos = 0.0
            reason = REASON_MAX_OPEN_POSITIONS
    if _increases(pos[j], new_pos) and max_gross < np.inf:
        gross_other = 0.0
        for k in range(m):
            if k != j and pos[k] != 0.0:
                gross_other += abs(pos[k]) * mark[k]
        room = max(max_gross - gross_other, 0.0)
        limited = _limit_increase(pos[j], new_pos, whole_nb(room / px, fractional))
        if limited != new_pos:
            new_pos = limited
            reason = REASON_MAX_PORTFOLIO_VALUE
    return new_pos, reason
