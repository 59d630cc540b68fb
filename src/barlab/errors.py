"""One exception hierarchy for barlab.

::

    BarlabError                 anything barlab raises on purpose; the CLI prints it in one line
    ├── ConfigError             a config file, environment variable or option is wrong  (exit 2)
    ├── UsageError              a command-line argument is wrong                        (exit 2)
    ├── StrategyError           unknown strategy, bad parameter, bad Signals            (exit 2)
    ├── DataError               the data asked for does not exist or cannot be read     (exit 1)
    │   ├── CacheError          a cache file is unreadable or corrupt
    │   └── DataRequestError    no such data can exist: unknown symbol, no trading days     (exit 2)
    ├── ProviderError           a market-data vendor failed                             (exit 1)
    │   ├── AuthError           missing or rejected API key
    │   └── RateLimitError      the vendor keeps answering 429
    ├── RiskError               a risk rule is misconfigured
    ├── BrokerError             the broker refused or failed (keeps .status, .code, .broker_message)
    │   ├── BrokerAuthError         missing or rejected trading keys (401, 403 without a code)
    │   ├── OrderRejectedError      the broker refused an order or change to one (403, 422)
    │   │   ├── InsufficientBuyingPowerError   403 "insufficient buying power"
    │   │   └── DuplicateOrderError            422 "client_order_id must be unique"
    │   ├── NotFoundError           no such order or position (404)
    │   ├── BrokerRateLimitError    the broker keeps answering 429
    │   └── BrokerUnavailableError  5xx, timeouts or no connection, after retries
    ├── RunNotFoundError        no saved run under that id
    ├── NotPromotedError        no promotion record fits the strategy, params and source  (exit 2)
    └── DistributedError        dask is missing, or no Dask scheduler answers           (exit 1)

Messages say what was expected, what was found, and what to do. They never contain a secret.
"""

from __future__ import annotations


class BarlabError(Exception):
    """Base class of every error barlab raises on purpose."""

    exit_code = 1


class ConfigError(BarlabError):
    exit_code = 2


class UsageError(BarlabError):
    exit_code = 2


class StrategyError(BarlabError):
    exit_code = 2


class DataError(BarlabError):
    pass


class CacheError(DataError):
    pass


class DataRequestError(DataError):
    """The request asks for data that cannot exist (an unknown demo symbol, dates without a
    trading day or outside the calendar): the request must change, so it exits 2."""

    exit_code = 2


class ProviderError(BarlabError):
    pass


class AuthError(ProviderError):
    pass


class RateLimitError(ProviderError):
    pass


class RiskError(BarlabError):
    exit_code = 2


class BrokerError(BarlabError):
    """The broker refused or failed.

    Attributes
    ----------
    status : int or None
        The HTTP status, e.g. 403; None when no answer arrived.
    code : int or None
        The broker's own code, e.g. Alpaca's 40310000.
    broker_message : str
        The broker's own words, e.g. ``"insufficient buying power"``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        broker_message: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.broker_message = broker_message


class BrokerAuthError(BrokerError):
    exit_code = 2


class OrderRejectedError(BrokerError):
    pass


class InsufficientBuyingPowerError(OrderRejectedError):
    pass


class DuplicateOrderError(OrderRejectedError):
    pass


class NotFoundError(BrokerError):
    pass


class BrokerRateLimitError(BrokerError):
    pass


class BrokerUnavailableError(BrokerError):
    pass


class RunNotFoundError(BarlabError):
    exit_code = 2


class NotPromotedError(BarlabError):
    """The strategy may not trade: no promotion record, other parameters, or its source file
    changed since it was promoted; ``backtest promote`` fixes it."""

    exit_code = 2


class DistributedError(BarlabError):
    """A sweep on a Dask cluster cannot start: dask's distributed scheduler is not installed,
    or no scheduler answers at the address given."""
