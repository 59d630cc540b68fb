"""Config: TOML + BARLAB_* overrides, unknown keys rejected, secrets masked."""

from __future__ import annotations

import pytest

from barlab.config import load_config, mask, secrets, show
from barlab.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in list(__import__("os").environ):
        if var.startswith("BARLAB_") or var in ("POLYGON_API_KEY", "APCA_API_KEY_ID"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def test_defaults_without_a_file():
    cfg = load_config()
    assert cfg.path is None
    assert cfg.strategy.symbols == ["AAPL", "MSFT", "TSLA", "GOOGL"]
    assert cfg.strategy.timeframe == "1m"
    assert str(cfg.data_dir) == "data" and str(cfg.reports_dir) == "reports"
    assert cfg.risk.daily_loss_limit is None


def test_local_file_then_env_override(tmp_path, monkeypatch):
    (tmp_path / "backtest.toml").write_text(
        '[risk]\nmax_position_size = 25000\n[strategy]\nsymbols = ["NVDA"]\ntimeframe = "5m"\n'
    )
    monkeypatch.setenv("BARLAB_RISK_MAX_POSITION_SIZE", "1000")
    monkeypatch.setenv("BARLAB_DATA_DIR", "/tmp/cache")
    monkeypatch.setenv("BARLAB_REPORTS_DIR", "/tmp/runs")
    monkeypatch.setenv("BARLAB_STRATEGY_SYMBOLS", "aapl, msft")
    cfg = load_config()
    assert cfg.risk.max_position_size == 1000.0
    assert cfg.strategy.timeframe == "5m"
    assert cfg.strategy.symbols == ["aapl", "msft"]
    assert str(cfg.data_dir) == "/tmp/cache" and str(cfg.reports_dir) == "/tmp/runs"


def test_user_config_dir_is_used(tmp_path):
    user = tmp_path / "xdg" / "barlab"
    user.mkdir(parents=True)
    (user / "backtest.toml").write_text("[backtest]\ncash = 5000\n")
    assert load_config().backtest.cash == 5000.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[risk]\nmax_positon_size = 1\n", ["unknown key 'max_positon_size'", "max_position_size"]),
        ("[riks]\n", ["unknown section [riks]"]),
        ('[backtest]\ncash = "lots"\n', ["[backtest] cash", "must be a number"]),
        ("[risk]\ndaily_loss_limit = -5\n", ["daily_loss_limit"]),
        ('[strategy]\ntimeframe = "2m"\n', ["strategy.timeframe", "1m"]),
        ("[data\n", ["not valid TOML"]),
    ],
)
def test_bad_files_name_the_problem(tmp_path, text, words):
    (tmp_path / "backtest.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config()
    for word in words:
        assert word in str(err.value)
    assert "backtest.toml" in str(err.value)


def test_bad_env_names_the_variable(monkeypatch):
    monkeypatch.setenv("BARLAB_BACKTEST_CASH", "abc")
    with pytest.raises(ConfigError, match="BARLAB_BACKTEST_CASH"):
        load_config()
    monkeypatch.delenv("BARLAB_BACKTEST_CASH")
    monkeypatch.setenv("BARLAB_WHATEVER", "1")
    with pytest.raises(ConfigError, match="BARLAB_WHATEVER is not a barlab setting"):
        load_config()


def test_secrets_from_env_and_dotenv_are_masked(tmp_path, monkeypatch):
    key = "pk_live_0123456789abcdefWXYZ"
    (tmp_path / ".env").write_text(f"# keys\nexport APCA_API_KEY_ID='{key}'\n")
    monkeypatch.setenv("POLYGON_API_KEY", "qz7k")
    found = secrets()
    assert found == {"POLYGON_API_KEY": "qz7k", "APCA_API_KEY_ID": key}
    text = show(load_config())
    assert key not in text and "qz7k" not in text
    assert "APCA_API_KEY_ID = ****WXYZ" in text
    assert mask("qz7k") == "****"
    assert "FINNHUB_API_KEY = (not set)" in text


def test_show_round_trips_as_toml(tmp_path):
    import tomllib

    (tmp_path / "backtest.toml").write_text("[risk]\ndaily_loss_limit = 2000\n")
    parsed = tomllib.loads(show(load_config()))
    assert parsed["risk"] == {
        "daily_loss_limit": 2000.0,
        "daily_loss_flatten": False,
        "max_position_size_per_symbol": {},
    }
    (tmp_path / "backtest.toml").write_text(show(load_config()))
    assert load_config().risk.daily_loss_limit == 2000.0


def test_risk_rules_from_toml_and_env(tmp_path, monkeypatch):
    (tmp_path / "backtest.toml").write_text(
        "[risk]\nmax_open_positions = 3\nmax_drawdown = 0.25\n"
        '[risk.max_position_size_per_symbol]\nTSLA = 10000\n"BRK.B" = 5000\n'
    )
    cfg = load_config()
    assert cfg.risk.max_open_positions == 3 and cfg.risk.max_drawdown == 0.25
    assert cfg.risk.max_position_size_per_symbol == {"TSLA": 10000.0, "BRK.B": 5000.0}
    assert load_config(None).risk == load_config(tmp_path / "backtest.toml").risk
    (tmp_path / "shown.toml").write_text(show(cfg))
    assert load_config(tmp_path / "shown.toml").risk == cfg.risk
    monkeypatch.setenv("BARLAB_RISK_MAX_POSITION_SIZE_PER_SYMBOL", "nvda=2500")
    monkeypatch.setenv("BARLAB_RISK_MAX_OPEN_POSITIONS", "2")
    cfg = load_config()
    assert cfg.risk.max_position_size_per_symbol == {"NVDA": 2500.0}
    assert cfg.risk.max_open_positions == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[risk]\nmax_open_positions = 2.5\n", ["max_open_positions", "whole number"]),
        ("[risk]\nmax_drawdown = 25\n", ["max_drawdown is a fraction"]),
        ("[risk]\nmax_position_size = 50000\nmax_portfolio_value = 10000\n", ["exceeds"]),
        ("[risk.max_position_size_per_symbol]\nTSLA = 'lots'\n", ["TSLA", "number of dollars"]),
    ],
)
def test_contradicting_or_bad_risk_settings(tmp_path, text, words):
    (tmp_path / "backtest.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config()
    for word in words:
        assert word in str(err.value)


def test_promotion_gates_from_toml_and_env(tmp_path, monkeypatch):
    cfg = load_config()
    assert cfg.promotion.min_trades == 30 and cfg.promotion.require_parity is True
    (tmp_path / "backtest.toml").write_text(
        "[promotion]\nmin_trades = 5\nmin_sharpe = 0.5\nmax_drawdown = 0.2\n"
        "require_walkforward = true\n"
    )
    monkeypatch.setenv("BARLAB_PROMOTION_REQUIRE_PARITY", "false")
    monkeypatch.setenv("BARLAB_PROMOTION_MIN_OOS_SHARPE", "0.25")
    cfg = load_config()
    assert (cfg.promotion.min_trades, cfg.promotion.min_sharpe) == (5, 0.5)
    assert cfg.promotion.max_drawdown == 0.2 and cfg.promotion.require_walkforward is True
    assert cfg.promotion.require_parity is False and cfg.promotion.min_oos_sharpe == 0.25
    (tmp_path / "shown.toml").write_text(show(cfg))
    assert load_config(tmp_path / "shown.toml").promotion == cfg.promotion


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[promotion]\nmax_drawdown = 25\n", ["promotion.max_drawdown is a fraction", "0.25"]),
        ("[promotion]\nmin_trades = -1\n", ["promotion.min_trades must be >= 0"]),
        ("[promotion]\nmin_trades = 2.5\n", ["[promotion] min_trades", "whole number"]),
        ("[promotion]\nrequire_parity = 'no'\n", ["require_parity", "true or false"]),
        ("[promotion]\nmin_sharpe = nan\n", ["promotion.min_sharpe must be a finite number"]),
        ("[promotion]\nmin_sharp = 1\n", ["unknown key 'min_sharp'", "min_sharpe"]),
    ],
)
def test_bad_promotion_settings(tmp_path, text, words):
    (tmp_path / "backtest.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config()
    for word in words:
        assert word in str(err.value)
