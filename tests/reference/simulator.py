"""A slow, obviously-correct account simulator: the engine kernel must agree with it exactly.

Plain Python, one bar and one symbol at a time, written from the rules in
barlab/engine/kernel.py's docstring, not from the kernel's code.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


@dataclass
class Order:
    kind: str  # market / limit / stop / stop_limit / trailing_stop_order, or an attached exit
    created_bar: int
    fill_bar: int
    symbol: int
    side: str  # "buy" / "sell"
    requested_qty: float
    qty: float
    price: float
    fee: float
    status: str  # filled / resized / refused
    reason: str


@dataclass
class Trade:
    symbol: int
    direction: int
    entry_bar: int
    exit_bar: int = -1
    is_open: bool = True
    size: float = 0.0  # shares bought (long) or sold (short) to open
    opened_value: float = 0.0
    closed_qty: float = 0.0
    closed_value: float = 0.0
    bought: float = 0.0  # dollars spent buying, all fills of the trade
    sold: float = 0.0
    fees: float = 0.0
    entry_price: float = 0.0
    exit_price: float = 0.0
    pnl: float = 0.0
    ambiguous: bool = False
    highest: float = 0.0  # prices seen while open
    lowest: float = 0.0
    mae: float = 0.0
    mfe: float = 0.0

    def excursions(self):
        if self.direction > 0:
            self.mae, self.mfe = (
                self.lowest / self.entry_price - 1,
                self.highest / self.entry_price - 1,
            )
        else:
            self.mae, self.mfe = (
                1 - self.highest / self.entry_price,
                1 - self.lowest / self.entry_price,
            )


@dataclass
class Account:
    equity: list[float] = field(default_factory=list)
    cash: list[float] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    positions: list[list[float]] = field(default_factory=list)


def fee_for(qty, price, rate, per_share, minimum, maximum=math.inf, per_order=0.0):
    fee = min(qty * price * rate + qty * per_share + per_order, maximum)
    if 0 < fee < minimum:
        fee = minimum
    return fee


def whole(qty, fractional):
    return qty if fractional else float(math.floor(qty))


def sign(x):
    return (x > 0) - (x < 0)


def adds_exposure(old, new):
    return new != 0 and (sign(new) != sign(old) or abs(new) > abs(old))


def clamp_added(old, new, limit):
    """Let ``new`` add at most ``limit`` shares of exposure on top of what ``old`` holds."""
    cap = max(limit, abs(old)) if old != 0 and sign(new) == sign(old) else limit
    return sign(new) * cap if abs(new) > cap else new


def ny_day(ts_ns):
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).astimezone(NY).date()


@dataclass
class Pending:
    """An instruction waiting to fill: a market order, or a resting limit / stop order."""

    target: float
    created: int
    limit: float = math.nan
    stop: float = math.nan
    session: object = None  # the session a day order rests in
    flatten: bool = False  # a closing order of the daily loss limit
    want: float = math.nan  # shares sized at the signal bar's close (size_on="signal")
    cut: bool = False  # the buying-power check at the signal asked for fewer shares
    trail: float = math.nan  # a trailing stop order: how far behind the best price
    ref: float = math.nan  # the close it was given at
    lowest: float = math.nan  # lowest low and highest high since then (trailing orders)
    highest: float = math.nan

    def kind(self):
        if not math.isnan(self.trail):
            return "trailing_stop_order"
        if math.isnan(self.stop):
            return "market" if math.isnan(self.limit) else "limit"
        return "stop" if math.isnan(self.limit) else "stop_limit"

    def resting(self):
        return self.kind() != "market"

    def trailing_stop(self, side):
        """A trailing order's stop for a buy (+1) or a sell (-1)."""
        if side > 0:
            return self.lowest * (1 + self.trail)
        return self.highest * (1 - self.trail)

    def unfilled(self, t, j, held, status):
        buy = self.target > 0 or (self.target == 0 and held < 0)
        if not math.isnan(self.trail):
            price = self.trailing_stop(1 if buy else -1)
        else:
            price = self.limit if math.isnan(self.stop) else self.stop
        side = "buy" if buy else "sell"
        return Order(self.kind(), self.created, t, j, side, 0.0, 0.0, price, 0.0, status, "")


def resting_fill(side, o, h, lo, lim, stp):
    """(price, triggered, limit-protected) of a resting order in one bar, before slippage."""
    if not math.isnan(stp):
        touched = h >= stp if side > 0 else lo <= stp
        if not touched:
            return 0.0, False, False
        price = max(o, stp) if side > 0 else min(o, stp)
        if math.isnan(lim):
            return price, True, False
        return price, (price <= lim if side > 0 else price >= lim), True
    if side > 0:
        return (o, True, True) if o <= lim else (lim, lo <= lim, True)
    return (o, True, True) if o >= lim else (lim, h >= lim, True)


def tick(price):
    """Stop-loss and take-profit levels are prices a broker accepts: whole cents from $1 up,
    hundredths of a cent below (NaN stays NaN)."""
    if math.isnan(price):
        return price
    scale = 100.0 if price >= 1 else 10_000.0
    return round(price * scale) / scale


def attached_exit(pos, o, h, lo, entry, best, sl, tp, trail, optimistic, gap_check,
                  atr=math.nan, sl_atr=math.inf, tp_atr=math.inf, trail_atr=math.inf):  # fmt: skip
    """(kind, price, ambiguous) of the exit that fills in this bar, or None."""
    long = pos > 0
    stops = []
    if sl < math.inf:
        stops.append(("stop_loss", tick(entry * (1 - sl) if long else entry * (1 + sl))))
    elif sl_atr < math.inf:
        stops.append(("stop_loss", tick(entry - sl_atr * atr if long else entry + sl_atr * atr)))
    if trail < math.inf:
        stops.append(("trailing_stop", best * (1 - trail) if long else best * (1 + trail)))
    elif trail_atr < math.inf:
        stops.append(("trailing_stop", best - trail_atr * atr if long else best + trail_atr * atr))
    stops = [s for s in stops if not math.isnan(s[1])]  # no ATR known at the entry: no exit
    # the tighter stop: the higher one for a long, the lower for a short (ties: stop_loss)
    stop = (max if long else min)(stops, key=lambda s: s[1]) if stops else None
    target = None
    if tp < math.inf:
        target = tick(entry * (1 + tp) if long else entry * (1 - tp))
    elif tp_atr < math.inf and not math.isnan(atr):
        target = tick(entry + tp_atr * atr if long else entry - tp_atr * atr)

    def beyond_stop(price):
        return stop is not None and (price <= stop[1] if long else price >= stop[1])

    def beyond_target(price):
        return target is not None and (price >= target if long else price <= target)

    if gap_check and beyond_stop(o):
        return stop[0], o, False
    if gap_check and beyond_target(o):
        return "take_profit", o, False
    hit_stop = beyond_stop(lo if long else h)
    hit_target = beyond_target(h if long else lo)
    if hit_stop and hit_target:
        return ("take_profit", target, True) if optimistic else (stop[0], stop[1], True)
    if hit_stop:
        return stop[0], stop[1], False
    if hit_target:
        return "take_profit", target, False
    return None


def simulate(
    ts_ns, open_, close, target, *, cash, size_pct=1.0, commission_rate=0.0,
    commission_per_share=0.0, commission_min=0.0, slippage_bps=0.0, fractional=False,
    max_position_size=math.inf, max_portfolio_value=math.inf, daily_loss_limit=math.inf,
    max_position_size_per_symbol=None, max_open_positions=None, max_drawdown=math.inf,
    high=None, low=None, stop_loss=math.inf, take_profit=math.inf, trailing_stop=math.inf,
    optimistic=False, sizing="equal", commission_max=math.inf, price_impact=0.0,
    max_participation=None, volume=None, commission_per_order=0.0,
    limit=None, stop=None, day_orders=False, daily_loss_flatten=False, allow_short=True,
    size_on="fill", buying_power_buffer=0.03, trail=None, margin=1.0, atr=None,
    stop_loss_atr=math.inf, take_profit_atr=math.inf, trailing_stop_atr=math.inf,
):  # fmt: skip
    n = len(open_)
    m = len(open_[0]) if n else 0
    acct = Account()
    pos = [0.0] * m
    last = [math.nan] * m
    pending: dict[int, Pending] = {}
    open_trade: dict[int, Trade] = {}
    entry = [0.0] * m  # the entry's reference price: its fill bar's open, or its signal close
    entry_atr = [math.nan] * m  # the ATR at the entry's signal bar
    best = [0.0] * m  # best high (long) or low (short) of the bars since entry, before this one
    entered = [-1] * m
    day_start = cash
    halted = False
    peak = cash
    stopped = False
    caps = [(max_position_size_per_symbol or {}).get(j, max_position_size) for j in range(m)]
    prev_equity = cash

    def price_for(o, side):
        return o * (1 + side * slippage_bps * 1e-4)

    for t in range(n):
        if t == 0 or ny_day(ts_ns[t]) != ny_day(ts_ns[t - 1]):
            day_start, halted = prev_equity, False
        fillable = [j for j in range(m) if j in pending and math.isfinite(open_[t][j])]
        if fillable:
            marks = [open_[t][j] if math.isfinite(open_[t][j]) else last[j] for j in range(m)]
            equity_open = marked(cash, pos, marks)
            wants = {}
            for j in fillable:
                order = pending[j]
                tg = order.target
                if size_on == "signal":
                    wants[j] = order.want
                    continue
                stop_px = order.stop
                if not math.isnan(order.trail):  # sized at the stop of its target's side
                    stop_px = order.trailing_stop(1 if tg > 0 else -1)
                if not math.isnan(order.limit):
                    px = order.limit
                elif not math.isnan(stop_px):
                    px = price_for(stop_px, 1 if tg > 0 else -1)
                else:
                    px = price_for(open_[t][j], 1 if tg > 0 else -1)
                unit = px * (1 + commission_rate) + commission_per_share
                if sizing == "shares":
                    wants[j] = sign(tg) * whole(abs(tg), fractional)
                    continue
                value = {
                    "equal": abs(tg) * (size_pct / m) * max(equity_open, 0.0),
                    "weight": abs(tg) * max(equity_open, 0.0),
                    "notional": abs(tg),
                }[sizing]
                wants[j] = sign(tg) * whole(value / unit, fractional)
            # sells first, then buys, each in symbol order
            for side in (-1, 1):
                for j in fillable:
                    if j not in pending:
                        continue
                    order = pending[j]
                    resting = order.resting()
                    if side == -1 and resting and day_orders:
                        if order.session is None:
                            order.session = ny_day(ts_ns[t])
                        elif ny_day(ts_ns[t]) != order.session:
                            acct.orders.append(order.unfilled(t, j, pos[j], "expired"))
                            del pending[j]
                            continue
                    if wants[j] == pos[j]:
                        del pending[j]
                        continue
                    if sign(wants[j] - pos[j]) != side:
                        continue
                    kind, base, protected = "market", open_[t][j], False
                    if resting:
                        kind = order.kind()
                        stop_px = order.stop
                        if not math.isnan(order.trail):
                            stop_px = order.trailing_stop(side)
                        base, triggered, protected = resting_fill(
                            side, open_[t][j], high[t][j], low[t][j], order.limit, stop_px
                        )
                        if not triggered:
                            touched = (
                                high[t][j] >= order.stop if side > 0 else low[t][j] <= order.stop
                            )
                            if kind == "stop_limit" and touched:
                                order.stop = math.nan  # a plain limit order from now on
                            continue
                    del pending[j]
                    _instruction, created = order.target, order.created
                    want = wants[j]
                    px = base if protected else price_for(base, side)
                    reason = "daily_loss_limit" if order.flatten else ""
                    if order.cut and not order.flatten:
                        reason = "insufficient_cash"
                    new = want
                    if new < 0 and not allow_short:
                        new, reason = 0.0, "no_shorting"
                    if abs(new) * px > caps[j]:
                        new = clamp_added(pos[j], new, whole(caps[j] / px, fractional))
                        reason = "max_position_size"
                    if (halted or stopped) and adds_exposure(pos[j], new):
                        new = pos[j] if sign(new) == sign(pos[j]) else 0.0
                        reason = "max_drawdown" if stopped else "daily_loss_limit"
                    held = sum(1 for q in pos if q != 0)
                    opens = pos[j] == 0 and new != 0
                    if opens and max_open_positions is not None and held >= max_open_positions:
                        new, reason = 0.0, "max_open_positions"
                    if adds_exposure(pos[j], new) and max_portfolio_value < math.inf:
                        others = sum(abs(pos[k]) * marks[k] for k in range(m) if k != j and pos[k])
                        room = max(max_portfolio_value - others, 0.0)
                        limited = clamp_added(pos[j], new, whole(room / px, fractional))
                        if limited != new:
                            new, reason = limited, "max_portfolio_value"
                    qty = abs(new - pos[j]) if sign(new - pos[j]) == side else 0.0
                    partial = False
                    if max_participation is not None and qty > max_participation * volume[t][j]:
                        qty = whole(max_participation * volume[t][j], fractional)
                        reason, partial = "max_participation", True
                        pending[j] = order  # the rest waits
                    if price_impact > 0 and qty > 0 and not protected:
                        share = min(qty / volume[t][j], 1.0) if volume[t][j] > 0 else 0.0
                        bps = slippage_bps + price_impact * share * share * 1e4
                        px = base * (1 + side * bps * 1e-4)
                    if side == 1 and qty > 0:
                        args = (commission_rate, commission_per_share, commission_min,
                                commission_max, commission_per_order)  # fmt: skip
                        # with margin, cash may be borrowed against the equity at the open
                        spendable = cash + (margin - 1) * max(equity_open, 0.0)
                        if qty * px + fee_for(qty, px, *args) > spendable:
                            qty = min(qty, affordable(spendable, px, *args, fractional))
                            reason = "insufficient_cash"
                    requested = abs(want - pos[j])
                    if qty <= 0:
                        acct.orders.append(
                            Order(
                                kind,
                                created,
                                t,
                                j,
                                "buy" if side > 0 else "sell",
                                requested,
                                0.0,
                                px,
                                0.0,
                                "refused",
                                reason,
                            )
                        )
                        continue
                    fee = fee_for(
                        qty, px, commission_rate, commission_per_share, commission_min,
                        commission_max, commission_per_order,
                    )  # fmt: skip
                    status = "filled" if qty == requested else "resized"
                    if partial:
                        status = "partially_filled"
                    acct.orders.append(
                        Order(
                            kind,
                            created,
                            t,
                            j,
                            "buy" if side > 0 else "sell",
                            requested,
                            qty,
                            px,
                            fee,
                            status,
                            reason,
                        )
                    )
                    cash -= side * qty * px + fee
                    book_fill(acct, open_trade, j, t, pos[j], side, qty, px, fee)
                    old = pos[j]
                    pos[j] += side * qty
                    if pos[j] != 0 and sign(old) != sign(pos[j]):
                        entry[j] = order.ref if size_on == "signal" else open_[t][j]
                        best[j], entered[j] = entry[j], t
                        entry_atr[j] = atr[created][j] if atr is not None else math.nan
        for j in range(m):
            if pos[j] == 0 or not math.isfinite(open_[t][j]) or high is None:
                continue
            hit = attached_exit(
                pos[j], open_[t][j], high[t][j], low[t][j], entry[j], best[j],
                stop_loss, take_profit, trailing_stop, optimistic,
                size_on == "signal" or entered[j] != t, entry_atr[j],
                stop_loss_atr, take_profit_atr, trailing_stop_atr,
            )  # fmt: skip
            if hit is None:
                best[j] = max(best[j], high[t][j]) if pos[j] > 0 else min(best[j], low[t][j])
                continue
            kind, level, ambiguous = hit
            side = -1 if pos[j] > 0 else 1
            qty = abs(pos[j])
            px = level if kind == "take_profit" else price_for(level, side)  # a limit: no slip
            fee = fee_for(
                qty,
                px,
                commission_rate,
                commission_per_share,
                commission_min,
                commission_max,
                commission_per_order,
            )
            acct.orders.append(Order(kind, t, t, j, "buy" if side > 0 else "sell", qty, qty, px,
                                     fee, "filled", ""))  # fmt: skip
            cash -= side * qty * px + fee
            open_trade[j].ambiguous = ambiguous
            book_fill(acct, open_trade, j, t, pos[j], side, qty, px, fee)
            pos[j] = 0.0
        for j, order in pending.items():  # resting trailing orders follow this bar
            if not math.isnan(order.trail) and high is not None:
                if math.isnan(order.lowest):  # given before the symbol's first close
                    order.lowest, order.highest = low[t][j], high[t][j]
                elif math.isfinite(high[t][j]):
                    order.lowest = min(order.lowest, low[t][j])
                    order.highest = max(order.highest, high[t][j])
        for j in range(m):
            if math.isfinite(close[t][j]):
                last[j] = close[t][j]
            if pos[j] != 0 and high is not None and math.isfinite(high[t][j]):
                tr = open_trade[j]
                tr.highest, tr.lowest = max(tr.highest, high[t][j]), min(tr.lowest, low[t][j])
        equity = marked(cash, pos, last)
        acct.equity.append(equity)
        acct.cash.append(cash)
        acct.positions.append(list(pos))
        flatten = daily_loss_flatten and not halted and equity <= day_start - daily_loss_limit
        # the broker's buying power at this close (size_on="signal"), Alpaca's rule: margin x
        # equity less the gross exposure (a short takes power like a long)
        power = max(margin * equity - gross(pos, last), 0.0)
        for j in range(m):
            closing = flatten and pos[j] != 0
            if closing or not math.isnan(target[t][j]):
                tg = 0.0 if closing else target[t][j]
                if size_on == "signal" and sizing != "shares" and math.isnan(last[j]):
                    continue  # no close yet to size it at: as if there were no instruction
                old = pending.get(j)
                if old is not None and old.created < t and old.resting():
                    acct.orders.append(old.unfilled(t, j, pos[j], "cancelled"))
                if closing:  # the daily loss limit closes everything at the next open
                    pending[j] = Pending(0.0, t, flatten=True, want=0.0, ref=last[j])
                    continue
                lim = limit[t][j] if limit is not None else math.nan
                stp = stop[t][j] if stop is not None else math.nan
                trl = trail[t][j] if trail is not None else math.nan
                if not math.isnan(trl):  # a trailing stop order has no other price
                    lim = stp = math.nan
                new = Pending(tg, t, lim, stp, trail=trl, ref=last[j], lowest=last[j],
                              highest=last[j])  # fmt: skip
                want = math.nan
                if size_on == "signal":  # at this close: the equity, and the close as price
                    if not math.isnan(trl):
                        stp = new.trailing_stop(1 if tg > 0 else -1)
                    base = last[j] if math.isnan(stp) else stp
                    px = lim if not math.isnan(lim) else price_for(base, 1 if tg > 0 else -1)
                    costs = (commission_rate, commission_per_share, fractional)
                    want = size_target(tg, sizing, equity, size_pct / m, px, *costs)
                    asked = want
                    at = check_price(
                        1 if want > pos[j] else -1, last[j], lim, stp if math.isnan(trl) else
                        math.nan, buying_power_buffer,
                    )  # fmt: skip
                    want, power = check_buying_power(
                        want, pos[j], at, power,
                        lambda cash, px: affordable(
                            cash, px, commission_rate, commission_per_share, commission_min,
                            commission_max, commission_per_order, fractional,
                        ),
                    )  # fmt: skip
                    cut = want != asked
                new.want, new.cut = want, size_on == "signal" and cut
                pending[j] = new
        prev_equity = equity
        if equity <= day_start - daily_loss_limit:
            halted = True
        peak = max(peak, equity)
        if equity <= peak * (1 - max_drawdown):
            stopped = True
    for j, tr in open_trade.items():
        tr.entry_price = tr.opened_value / tr.size
        tr.exit_price = last[j]
        tr.exit_bar = n - 1
        tr.pnl = tr.sold - tr.bought + pos[j] * last[j] - tr.fees
        tr.excursions()
    return acct


def size_target(tg, sizing, equity, alloc, px, rate, per_share, fractional):
    """Signed shares a target asks for, sized on ``equity`` at price ``px``."""
    if sizing == "shares":
        return sign(tg) * whole(abs(tg), fractional)
    value = {
        "equal": abs(tg) * alloc * max(equity, 0.0),
        "weight": abs(tg) * max(equity, 0.0),
        "notional": abs(tg),
    }[sizing]
    return sign(tg) * whole(value / (px * (1 + rate) + per_share), fractional)


def check_price(side, last, limit, stop, buffer):
    """What a share of an order adding exposure reserves: a buy with a limit, the limit; a sell
    with a limit, the limit or the close plus the buffer if higher; else the close, or the stop
    if higher, plus the buffer."""
    market = (stop if stop > last else last) * (1 + buffer)  # no stop (NaN): the close
    if math.isnan(limit):
        return market
    return market if side < 0 and market > limit else limit


def check_buying_power(want, held, px, power, afford):
    """A broker's check at submit: the shares that add exposure (beyond closing ``held``) cost
    ``px`` each out of ``power``; fewer are asked for when it does not cover them."""
    side = 1 if want > held else -1
    closing = max(0.0, -held) if side > 0 else max(0.0, held)
    adding = max(0.0, abs(want - held) - closing)
    if adding <= 0 or not px > 0:
        return want, power
    if adding * px > power:
        most = afford(power, px)
        if most < adding:
            want -= side * (adding - most)
            adding = most
    return want, power - adding * px


def gross(pos, prices):
    """Each position's absolute value at its price, added up in symbol order."""
    total = 0.0
    for q, p in zip(pos, prices, strict=True):
        if q != 0:
            total += abs(q) * p
    return total


def marked(cash, pos, prices):
    """Cash plus each position at its price, added up in symbol order."""
    total = cash
    for q, p in zip(pos, prices, strict=True):
        if q != 0:
            total += q * p
    return total


def affordable(cash, px, rate, per_share, minimum, maximum, per_order, fractional):
    if cash <= 0:
        return 0.0
    qty = (cash - per_order) / (px * (1 + rate) + per_share)
    fee = qty * px * rate + qty * per_share + per_order
    if fee > maximum:
        qty = (cash - maximum) / px  # the capped commission first, the rest buys shares
    elif (rate > 0 or per_share > 0 or per_order > 0) and fee < minimum:
        qty = (cash - minimum) / px
    if not fractional:
        qty = float(math.floor(qty)) if qty > 0 else 0.0
    return max(qty, 0.0)


def book_fill(acct, open_trade, j, t, old, side, qty, px, fee):
    """Add a fill to the symbol's round trip: close the old position first, then open."""
    if j in open_trade:  # every fill's price is seen by the trade it belongs to
        tr = open_trade[j]
        tr.highest, tr.lowest = max(tr.highest, px), min(tr.lowest, px)
    closing = min(qty, abs(old)) if old != 0 and sign(old) != side else 0.0
    opening = qty - closing
    if closing:
        tr = open_trade[j]
        share = fee * closing / qty
        tr.fees += share
        tr.closed_qty += closing
        tr.closed_value += closing * px
        if side > 0:
            tr.bought += closing * px
        else:
            tr.sold += closing * px
        if closing == abs(old):
            tr.exit_bar, tr.is_open = t, False
            tr.entry_price = tr.opened_value / tr.size
            tr.exit_price = tr.closed_value / tr.closed_qty
            tr.pnl = tr.sold - tr.bought - tr.fees
            tr.excursions()
            del open_trade[j]
    if opening:
        if j not in open_trade:
            open_trade[j] = Trade(symbol=j, direction=side, entry_bar=t, highest=px, lowest=px)
            acct.trades.append(open_trade[j])
        tr = open_trade[j]
        tr.fees += fee - (fee * closing / qty if closing else 0.0)
        tr.size += opening
        tr.opened_value += opening * px
        if side > 0:
            tr.bought += opening * px
        else:
            tr.sold += opening * px
