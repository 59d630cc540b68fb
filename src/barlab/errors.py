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
    ├── BrokerError             the broker refused or failed
    └── RunNotFoundError        no saved run under that id

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
    pass


class RunNotFoundError(BarlabError):
    exit_code = 2
