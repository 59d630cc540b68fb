"""AlpacaBroker: the Alpaca trading REST client (api/alpaca-trading.md §2-5, §11) on barlab's
one HTTP stack (:mod:`barlab.data.http`: token bucket, backoff honouring X-RateLimit-Reset and
Retry-After, key redaction).

- Paper by default; the live host only with ``allow_live=True``.
- Answers become frozen records (:mod:`barlab.live.broker_models`); failures become the
  BrokerError tree of :mod:`barlab.errors`, keeping the HTTP status, Alpaca's code and message.
- GETs and cancels retry 429/5xx with backoff. A submit never retries blindly: it always carries
  a ``client_order_id``, and after a timeout or 5xx it looks the order up by that id and only
  sends again when the order is not there.
- Keys travel in headers only and never appear in logs, exceptions or ``repr``.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from barlab.data.http import HttpClient, TokenBucket, backoff_s
from barlab.errors import (
    BrokerError,
    BrokerRateLimitError,
    BrokerUnavailableError,
    ConfigError,
    DuplicateOrderError,
    NotFoundError,
    OrderRejectedError,
    ProviderError,
)
from barlab.live.broker_errors import KEY_HINT, broker_error, bulk_result, error_body
from barlab.live.broker_models import Account, BulkResult, Clock, Order, Position
from barlab.live.wire import dec

log = logging.getLogger(__name__)

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
_LIVE_HOST = "api.alpaca.markets"
_PAPER_HOST = "paper-api.alpaca.markets"
_POST_RETRIES = frozenset({429})
_NO_RETRY: frozenset[int] = frozenset()


class AlpacaBroker:
    """A client of one Alpaca trading account.

    Parameters
    ----------
    base_url : str
        ``https://paper-api.alpaca.markets`` (paper), a local emulator such as
        ``http://127.0.0.1:8765``, or ``https://api.alpaca.markets`` (live, needs ``allow_live``).
    key_id, secret_key : str
        The account's key pair (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``).
    allow_live : bool
        Permit the live trading host; without it the live URL is a ConfigError.
    timeout_s : float
        Connect and read timeout per request, e.g. 10.
    max_retries : int
        Retries of a 429/5xx/timeout (and resubmits of an order that did not land), e.g. 5.
    requests_per_minute : float
        The client-side budget, e.g. 190 (Alpaca allows 200 per key).
    backoff_base_s : float
        First backoff step in seconds, doubled each retry (with jitter), e.g. 0.5.
    session : requests.Session, optional
        Reused for connection pooling; the keys are set on its headers.
    """

    def __init__(
        self,
        base_url: str,
        key_id: str,
        secret_key: str,
        *,
        allow_live: bool = False,
        timeout_s: float = 10.0,
        max_retries: int = 5,
        requests_per_minute: float = 190.0,
        backoff_base_s: float = 0.5,
        session: requests.Session | None = None,
        seed: int | None = None,
    ) -> None:
        _check_target(base_url, key_id, allow_live=allow_live)
        if not key_id or not secret_key:
            raise ConfigError(f"Alpaca trading needs a key pair; {KEY_HINT}")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._rng = random.Random(seed)
        session = session or requests.Session()
        session.headers.update({"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key})
        self._key_tail = key_id[-4:] if len(key_id) >= 16 else ""
        self._http = HttpClient(
            provider="alpaca", base_url=self.base_url, secrets=[key_id, secret_key],
            bucket=TokenBucket(per_minute=requests_per_minute, burst=20),
            auth_hint=KEY_HINT, timeout_s=timeout_s, max_retries=max_retries,
            backoff_base_s=backoff_base_s, session=session, seed=seed,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"AlpacaBroker({self.base_url!r}, key_id='****{self._key_tail}')"

    @property
    def stats(self) -> Any:
        """Requests, retries and waits so far (:class:`barlab.data.http.HttpStats`)."""
        return self._http.stats

    # -- orders --------------------------------------------------------------------------------

    def submit_order(
        self,
        symbol: str,
        qty: float | None = None,
        *,
        side: str,
        type: str = "market",
        time_in_force: str = "day",
        notional: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_price: float | None = None,
        trail_percent: float | None = None,
        client_order_id: str | None = None,
        extended_hours: bool = False,
        order_class: str | None = None,
        take_profit: float | None = None,
        stop_loss: float | None = None,
    ) -> Order:
        """Place an order; returns it as accepted (``new``/``accepted``), usually not filled.

        ``qty`` shares or ``notional`` dollars; ``side`` "buy"/"sell"; ``type`` market, limit,
        stop, stop_limit or trailing_stop (with ``trail_price`` dollars or ``trail_percent``,
        e.g. 2.5); ``time_in_force`` day, gtc, opg, cls, ioc or fok. ``client_order_id``
        (<= 128 characters; a UUID when omitted) makes the submit safe to repeat: an order that
        landed is never placed twice. ``order_class`` "bracket" (both exits), "oto" (one) or
        "oco" attaches exits: ``take_profit`` (the limit price, dollars) and ``stop_loss`` (the
        stop price), working once the order fills (their orders come back in ``legs``).

        Raises InsufficientBuyingPowerError, OrderRejectedError (403/422),
        DuplicateOrderError (the id was used before), BrokerUnavailableError.
        """
        coid = client_order_id or str(uuid.uuid4())
        body: dict[str, Any] = {
            "symbol": symbol, "side": side, "type": type, "time_in_force": time_in_force,
            "client_order_id": coid,
        }  # fmt: skip
        for key, value in (("qty", qty), ("notional", notional), ("limit_price", limit_price),
                           ("stop_price", stop_price), ("trail_price", trail_price),
                           ("trail_percent", trail_percent)):  # fmt: skip
            if value is not None:
                body[key] = dec(value)
        if extended_hours:
            body["extended_hours"] = True
        if order_class:
            body["order_class"] = order_class
        if take_profit is not None:
            body["take_profit"] = {"limit_price": dec(take_profit)}
        if stop_loss is not None:
            body["stop_loss"] = {"stop_price": dec(stop_loss)}
        order = self._submit(body, coid)
        log.info("alpaca order %s %s %s %s -> %s", coid, side, symbol, type, order.status)
        return order

    def _submit(self, body: dict[str, Any], coid: str) -> Order:
        last: BrokerError | None = None
        for attempt in range(self.max_retries + 1):
            try:
                answer = self._send("POST", "/v2/orders", json=body, retry=_POST_RETRIES)
                return Order.from_json(answer)
            except DuplicateOrderError:
                if attempt == 0:
                    raise  # the caller reused an id: not ours to resolve
                found = self._find_by_client_id(coid)
                if found is None:
                    raise
                return found  # an earlier attempt landed after all
            except (BrokerUnavailableError, BrokerRateLimitError) as e:
                last = e
            found = self._find_by_client_id(coid)  # ambiguous: did it land?
            if found is not None:
                log.warning("alpaca order %s landed despite %s", coid, last)
                return found
            wait = backoff_s(attempt + 1, base_s=self._http.backoff_base_s, rng=self._rng)
            log.warning("alpaca order %s not placed (%s); resubmitting in %.1f s", coid, last, wait)
            self._http.bucket.sleep(wait)
        raise BrokerUnavailableError(
            f"alpaca order {coid} could not be placed after {self.max_retries + 1} attempts "
            f"({last}); it is not on the account, so it is safe to submit again later",
            status=last.status if last else None,
        ) from last

    def _find_by_client_id(self, coid: str) -> Order | None:
        try:
            return self.get_order_by_client_id(coid)
        except NotFoundError:
            return None

    def get_order(self, order_id: str, *, nested: bool = False) -> Order:
        """The order with this id (NotFoundError when there is none)."""
        params = {"nested": "true"} if nested else None
        return Order.from_json(self._send("GET", f"/v2/orders/{_id(order_id)}", params=params))

    def get_order_by_client_id(self, client_order_id: str) -> Order:
        """The order placed with this ``client_order_id`` (NotFoundError when there is none)."""
        params = {"client_order_id": client_order_id}
        return Order.from_json(self._send("GET", "/v2/orders:by_client_order_id", params=params))

    def list_orders(
        self,
        status: str = "open",
        *,
        symbols: Iterable[str] | None = None,
        after: Any = None,
        until: Any = None,
        limit: int = 50,
        nested: bool = False,
        direction: str = "desc",
        side: str | None = None,
    ) -> list[Order]:
        """Orders by ``status`` (open, closed, all), newest first unless ``direction="asc"``;
        ``after``/``until`` are datetimes or RFC 3339 strings (exclusive, submission time);
        ``limit`` at most 500."""
        params: dict[str, str] = {"status": status, "limit": str(limit), "direction": direction}
        if symbols:
            params["symbols"] = ",".join(symbols)
        for key, value in (("after", after), ("until", until)):
            if value is not None:
                params[key] = value if isinstance(value, str) else value.isoformat()
        if nested:
            params["nested"] = "true"
        if side:
            params["side"] = side
        return [Order.from_json(o) for o in self._send("GET", "/v2/orders", params=params)]

    def replace_order(
        self,
        order_id: str,
        *,
        qty: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail: float | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
    ) -> Order:
        """Replace an open order; returns the *new* order (the old one becomes ``replaced``)."""
        body: dict[str, Any] = {}
        for key, value in (("qty", qty), ("limit_price", limit_price),
                           ("stop_price", stop_price), ("trail", trail)):  # fmt: skip
            if value is not None:
                body[key] = dec(value)
        if time_in_force:
            body["time_in_force"] = time_in_force
        if client_order_id:
            body["client_order_id"] = client_order_id
        path = f"/v2/orders/{_id(order_id)}"
        return Order.from_json(self._send("PATCH", path, json=body, retry=_POST_RETRIES))

    def cancel_order(self, order_id: str) -> None:
        """Ask to cancel (the ``canceled`` event confirms). NotFoundError for an unknown id;
        OrderRejectedError (422) when it already filled or expired. A 422 for an order that is
        already canceled (a retried cancel that had landed) is success."""
        try:
            self._send("DELETE", f"/v2/orders/{_id(order_id)}")
        except OrderRejectedError as e:
            if e.status != 422 or self.get_order(order_id).status != "canceled":
                raise

    def cancel_all_orders(self) -> list[BulkResult]:
        """Cancel every open order; one result per order."""
        return [bulk_result(e, "id") for e in self._send("DELETE", "/v2/orders")]

    # -- positions, account, clock --------------------------------------------------------------

    def list_positions(self) -> list[Position]:
        return [Position.from_json(p) for p in self._send("GET", "/v2/positions")]

    def get_position(self, symbol: str) -> Position | None:
        """The open position in ``symbol``, or None when flat (Alpaca's 404)."""
        try:
            return Position.from_json(self._send("GET", f"/v2/positions/{_id(symbol)}"))
        except NotFoundError:
            return None

    def close_position(
        self, symbol: str, *, qty: float | None = None, percentage: float | None = None
    ) -> Order:
        """Close all of a position, ``qty`` shares or ``percentage`` (0-100) of it with a market
        order; returns that order. NotFoundError when there is no position."""
        params = {k: dec(v) for k, v in (("qty", qty), ("percentage", percentage)) if v}
        path = f"/v2/positions/{_id(symbol)}"
        return Order.from_json(self._send("DELETE", path, params=params, retry=_POST_RETRIES))

    def close_all_positions(self, *, cancel_orders: bool = False) -> list[BulkResult]:
        """Close every position (cancelling open orders first if asked); one result each."""
        params = {"cancel_orders": "true" if cancel_orders else "false"}
        answer = self._send("DELETE", "/v2/positions", params=params, retry=_POST_RETRIES)
        return [bulk_result(e, "symbol") for e in answer]

    def get_account(self) -> Account:
        return Account.from_json(self._send("GET", "/v2/account"))

    def get_clock(self) -> Clock:
        return Clock.from_json(self._send("GET", "/v2/clock"))

    # -- the boundary ------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        retry: frozenset[int] | None = None,
    ) -> Any:
        """One call; the JSON answer (None for 204), or the BrokerError its failure maps to."""
        where = f"{method} {path}"
        try:
            response = self._http.request(
                method, path, params=params, json=json,
                retry_statuses=retry if retry is not None else _RETRY,
                retry_errors=retry is None,
            )  # fmt: skip
        except ProviderError as e:
            raise BrokerUnavailableError(f"alpaca {where}: no answer ({e})") from e
        if response.status_code == 204:
            return None
        try:
            response.raise_for_status()
            return response.json()
        except requests.HTTPError as e:
            raise broker_error(response.status_code, error_body(response), where) from e
        except ValueError as e:
            raise BrokerError(
                f"alpaca {where} answered HTTP {response.status_code} with a body that is not "
                "JSON", status=response.status_code,
            ) from e  # fmt: skip


_RETRY = frozenset({429, 500, 502, 503, 504})


def connect(config: Any, *, allow_live: bool = False, **options: Any) -> AlpacaBroker:
    """An AlpacaBroker for ``config.live.trading_base_url`` (paper unless configured otherwise;
    ``$APCA_API_BASE_URL`` overrides it) with the keys from the environment or ./.env.

    Raises ConfigError naming the missing variables, or the live host without ``allow_live``.
    """
    from barlab.config import secrets

    found = secrets()
    missing = [n for n in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY") if n not in found]
    if missing:
        raise ConfigError(
            f"Alpaca trading needs {' and '.join(missing)}; export them or put them in ./.env "
            "(any pair works against `backtest paper-sim`)"
        )
    return AlpacaBroker(
        config.live.trading_base_url, found["APCA_API_KEY_ID"], found["APCA_API_SECRET_KEY"],
        allow_live=allow_live, **options,
    )  # fmt: skip


def _id(value: str) -> str:
    return quote(str(value), safe="")


def _check_target(base_url: str, key_id: str, *, allow_live: bool) -> None:
    """Refuse the live host without ``allow_live``, and paper keys (PK...) on it or live keys
    (AK...) on the paper host."""
    host = urlsplit(base_url).hostname or ""
    if urlsplit(base_url).scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"trading base URL {base_url!r} is not an http(s) URL; use {PAPER_URL} "
            "or a local emulator such as http://127.0.0.1:8765"
        )
    if host == _LIVE_HOST and not allow_live:
        raise ConfigError(
            f"{base_url} is Alpaca's LIVE trading host (real money); use {PAPER_URL} for paper "
            "trading, or pass allow_live=True if you really mean live"
        )
    if host == _LIVE_HOST and key_id.startswith("PK"):
        raise ConfigError(f"a paper key (PK...) cannot trade on {base_url}; use {PAPER_URL}")
    if host == _PAPER_HOST and key_id.startswith("AK"):
        raise ConfigError(f"a live key (AK...) cannot trade on {base_url}; use paper keys")
