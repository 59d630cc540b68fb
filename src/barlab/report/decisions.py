"""What the engine decided: the trades (sortable, filterable), the order log by status, and the
risk events (orders a rule refused or resized, and which rule), all read from the Result.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from barlab.report.charts import NY
from barlab.report.labels import fmt
from barlab.report.page import e

MAX_TRADES = 2_000
"""Trades listed in the report; a longer run lists its first 2,000 and says so."""
MAX_EVENTS = 200
"""Risk events listed one by one (all are counted)."""

_STATUSES = ("filled", "resized", "refused")
_STATUS_HELP = {
    "filled": "filled in full",
    "resized": "filled with fewer shares than asked",
    "refused": "nothing filled",
}
_REASON_HELP = {
    "insufficient_cash": "not enough cash for the shares and the commission",
    "max_position_size": "risk rule: largest position per symbol",
    "max_portfolio_value": "risk rule: largest gross exposure",
    "daily_loss_limit": "risk rule: the session's loss limit was reached",
    "max_open_positions": "risk rule: most symbols held at once",
    "max_drawdown": "risk rule: the drawdown halt",
}


def _ny(df: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return df.with_columns(pl.col(*cols).dt.convert_time_zone(NY).dt.strftime("%Y-%m-%d %H:%M"))


def _td(value: Any, css: str = "", sort: float | None = None) -> str:
    attr = f' class="{css.strip()}"' if css.strip() else ""
    if sort is not None and math.isfinite(sort):
        attr += f' data-v="{sort:.10g}"'
    return f"<td{attr}>{e(value)}</td>"


def _th(name: str, css: str = "") -> str:
    return f'<th scope="col" class="{css}">{e(name)}</th>' if css else f"<th>{e(name)}</th>"


def _sign(value: float) -> str:
    return "gain" if value > 0 else "loss" if value < 0 else ""


def shares(size: float) -> str:
    return f"{size:,.0f}" if float(size).is_integer() else f"{size:,.4f}"


_TRADE_COLUMNS = (
    ("#", "num"), ("Symbol", ""), ("Direction", ""), ("Entry (NY)", ""), ("Exit (NY)", ""),
    ("Bars held", "num"), ("Size", "num"), ("Entry price", "num"), ("Exit price", "num"),
    ("P&L", "num"), ("Return", "num"), ("Fees", "num"), ("Notes", ""),
)  # fmt: skip


def trades_table(trades: pl.DataFrame, *, fill_policy: str | None = None) -> str:
    """The trades, sortable and filterable; ``fill_policy`` is the run's, for the note on
    ambiguous bars (trades frames written before the engine flagged them have no such column).
    """
    total = trades.height
    flagged = "ambiguous" in trades.columns
    shown = _ny(trades.head(MAX_TRADES), "entry_time", "exit_time")
    rows = []
    for i, t in enumerate(shown.iter_rows(named=True), start=1):
        kind = ["win" if t["pnl"] > 0 else "loss" if t["pnl"] < 0 else "flat", t["direction"]]
        notes = []
        if t["is_open"]:
            kind.append("open")
            notes.append("open")
        if flagged and t["ambiguous"]:
            kind.append("ambiguous")
            notes.append("ambiguous bar")
        held = t["exit_bar"] - t["entry_bar"]
        cells = [
            _td(i, "num", i), _td(t["symbol"]), _td(t["direction"]), _td(t["entry_time"]),
            _td(t["exit_time"]), _td(f"{held:,}", "num", held),
            _td(shares(t["size"]), "num", t["size"]),
            _td(fmt(t["entry_price"], "money"), "num", t["entry_price"]),
            _td(fmt(t["exit_price"], "money"), "num", t["exit_price"]),
            _td(fmt(t["pnl"], "money"), "num " + _sign(t["pnl"]), t["pnl"]),
            _td(fmt(t["return"], "pct"), "num " + _sign(t["return"]), t["return"]),
            _td(fmt(t["fees"], "money"), "num", t["fees"]), _td(", ".join(notes)),
        ]  # fmt: skip
        rows.append(f'<tr data-kind="{" ".join(kind)}">{"".join(cells)}</tr>')
    head = "".join(_th(name, css) for name, css in _TRADE_COLUMNS)
    if total > MAX_TRADES:
        note = f"Showing the first {MAX_TRADES:,} of {total:,} trades (all are in trades.parquet)."
    else:
        note = f"{total:,} trades." if total != 1 else "1 trade."
    controls = (
        '<div class="filter" data-filter="trades-table"><label>Filter <input type="search" '
        'placeholder="e.g. AAPL 2024-03" aria-label="Filter trades by words"></label> '
        '<label>Show <select aria-label="Which trades"><option value="">all</option>'
        '<option value="win">winners</option><option value="loss">losers</option>'
        '<option value="long">long</option><option value="short">short</option>'
        '<option value="open">open</option>'
        + ('<option value="ambiguous">ambiguous bar</option>' if flagged else "")
        + "</select></label> <output></output></div>"
    )
    if flagged:
        n = int(trades["ambiguous"].sum())
        policy = f" ({fill_policy})" if fill_policy else ""
        note += (
            f" {n:,} of them exited on an ambiguous bar: its range held both the stop and the "
            f"target, so the fill policy{policy} chose which filled."
        )
    return (
        f'<section id="trades"><h2>Trades</h2><p class="note">{e(note)} Click a column to sort. '
        "A trade still open at the last bar shows that bar as its exit, is noted open and is "
        "valued at its close.</p>"
        f'{controls if total else ""}<div class="table-wrap scroll"><table class="trades '
        f'sortable" id="trades-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def orders_summary(orders: pl.DataFrame) -> str:
    """Orders by status and side, with shares asked for and filled."""
    rows = []
    total = orders.height
    for status in _STATUSES:
        part = orders.filter(pl.col("status") == status)
        buys = part.filter(pl.col("side") == "buy").height
        cells = [
            f'<th scope="row">{e(status)}</th>',
            _td(f"{part.height:,}", "num"),
            _td(f"{part.height / total:.1%}" if total else "–", "num"),
            _td(f"{buys:,}", "num"),
            _td(f"{part.height - buys:,}", "num"),
            _td(shares(float(part["requested_qty"].sum())), "num"),
            _td(shares(float(part["qty"].sum())), "num"),
            _td(fmt(float(part["fee"].sum()), "money"), "num"),
            _td(_STATUS_HELP[status], "muted"),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(
        _th(n, c)
        for n, c in (("Status", ""), ("Orders", "num"), ("Share", "num"), ("Buys", "num"),
                     ("Sells", "num"), ("Shares asked", "num"), ("Shares filled", "num"),
                     ("Fees", "num"), ("Meaning", ""))
    )  # fmt: skip
    return (
        f'<section id="orders"><h2>Order log</h2><p class="note">{total:,} orders, each with '
        "its fate as the engine recorded it.</p>"
        f'<div class="table-wrap"><table class="orders"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{_orders_by_kind(orders)}</section>"
    )


def _orders_by_kind(orders: pl.DataFrame) -> str:
    """Market orders from the signals against the attached exits (stop-loss, take-profit,
    trailing stop), when the order log records the kind (runs saved before it did do not)."""
    if "kind" not in orders.columns or orders.height == 0:
        return ""
    by_kind = (
        orders.group_by("kind")
        .agg(
            pl.len().alias("n"), (pl.col("status") != "refused").sum().alias("filled"),
            pl.col("qty").sum().alias("qty"), pl.col("fee").sum().alias("fee"),
        )
        .sort("n", "kind", descending=[True, False])
    )  # fmt: skip
    rows = []
    for k in by_kind.iter_rows(named=True):
        cells = [
            f'<th scope="row">{e(k["kind"])}</th>', _td(f"{k['n']:,}", "num"),
            _td(f"{k['filled']:,}", "num"), _td(f"{k['n'] - k['filled']:,}", "num"),
            _td(shares(k["qty"]), "num"), _td(fmt(k["fee"], "money"), "num"),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(
        _th(n, c)
        for n, c in (("Kind", ""), ("Orders", "num"), ("Filled", "num"), ("Refused", "num"),
                     ("Shares filled", "num"), ("Fees", "num"))
    )  # fmt: skip
    return (
        '<h3>By kind</h3><p class="note">market: from the strategy\'s signals, at the next '
        "open; stop_loss, take_profit, trailing_stop: exits attached to each entry.</p>"
        f'<div class="table-wrap"><table class="orders kinds"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def risk_events(orders: pl.DataFrame) -> str:
    """Orders refused or resized, counted by rule (or reason) and status, then listed."""
    events = orders.filter(pl.col("status") != "filled")
    if events.height == 0:
        return (
            '<section id="risk"><h2>Risk events</h2><p class="note">No order was refused or '
            "resized: no risk rule and no cash limit changed what the strategy asked for.</p>"
            "</section>"
        )
    events = events.with_columns(pl.col("time").dt.convert_time_zone(NY).dt.date().alias("day"))
    by_rule = (
        events.group_by("reason", "status")
        .agg(
            pl.len().alias("n"), pl.col("symbol").n_unique().alias("symbols"),
            pl.col("day").n_unique().alias("days"), pl.col("time").min().alias("first"),
            pl.col("time").max().alias("last"),
            (pl.col("requested_qty") - pl.col("qty")).sum().alias("cut"),
        )
        .sort("n", "reason", descending=[True, False])
    )  # fmt: skip
    rows = []
    for r in _ny(by_rule, "first", "last").iter_rows(named=True):
        cells = [
            f'<th scope="row">{e(r["reason"] or "–")}</th>', _td(r["status"]),
            _td(f"{r['n']:,}", "num"), _td(f"{r['symbols']:,}", "num"),
            _td(f"{r['days']:,}", "num"), _td(shares(r["cut"]), "num"), _td(r["first"]),
            _td(r["last"]), _td(_REASON_HELP.get(r["reason"], ""), "muted"),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(
        _th(n, c)
        for n, c in (("Rule or reason", ""), ("Status", ""), ("Orders", "num"),
                     ("Symbols", "num"), ("Sessions", "num"), ("Shares cut", "num"),
                     ("First (NY)", ""), ("Last (NY)", ""), ("Meaning", ""))
    )  # fmt: skip
    listed = _ny(events.head(MAX_EVENTS), "time")
    items = []
    for o in listed.iter_rows(named=True):
        cells = [
            _td(o["time"]), _td(o["symbol"]), _td(o["side"]), _td(o["status"]),
            _td(o["reason"] or "–"), _td(shares(o["requested_qty"]), "num", o["requested_qty"]),
            _td(shares(o["qty"]), "num", o["qty"]),
        ]  # fmt: skip
        items.append("<tr>" + "".join(cells) + "</tr>")
    list_head = "".join(
        _th(n, c)
        for n, c in (("Time (NY)", ""), ("Symbol", ""), ("Side", ""), ("Status", ""),
                     ("Rule or reason", ""), ("Shares asked", "num"), ("Shares filled", "num"))
    )  # fmt: skip
    more = (
        f" The first {MAX_EVENTS:,} of {events.height:,} are listed."
        if events.height > MAX_EVENTS
        else ""
    )
    return (
        '<section id="risk"><h2>Risk events</h2><p class="note">Orders refused or resized, '
        "by the rule (or reason) the engine recorded. Sessions: New York days with such an "
        f"order.{e(more)}</p>"
        f'<div class="table-wrap"><table class="risk"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<details><summary>Each event</summary><div class="table-wrap scroll">'
        f'<table class="events sortable"><thead><tr>{list_head}</tr></thead>'
        f"<tbody>{''.join(items)}</tbody></table></div></details></section>"
    )
