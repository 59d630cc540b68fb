"""The emulator over HTTP: Alpaca's routes, status codes, wire format, auth and rate limit."""

from __future__ import annotations

import requests

from barlab.live.emulator import EmulatorServer
from barlab.live.exchange import PaperExchange
from tests.live.conftest import KEY_ID, SECRET, session_bars

AUTH = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}
ORDER_FIELDS = {
    "id", "client_order_id", "created_at", "updated_at", "submitted_at", "filled_at",
    "expired_at", "expires_at", "canceled_at", "failed_at", "replaced_at", "replaced_by",
    "replaces", "asset_id", "symbol", "asset_class", "notional", "qty", "filled_qty",
    "filled_avg_price", "order_class", "order_type", "type", "side", "position_intent",
    "time_in_force", "limit_price", "stop_price", "status", "extended_hours", "legs",
    "trail_percent", "trail_price", "hwm", "source", "subtag",
}  # fmt: skip


def call(server, method, path, **kwargs):
    return requests.request(method, server.url + path, headers=AUTH, timeout=5, **kwargs)


def market(symbol="AAPL", qty="10", **extra):
    return {"symbol": symbol, "qty": qty, "side": "buy", "type": "market",
            "time_in_force": "day", **extra}  # fmt: skip


def test_auth_is_required(server):
    assert requests.get(server.url + "/v2/account", timeout=5).status_code == 401
    wrong = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": "wrong"}
    answer = requests.get(server.url + "/v2/account", headers=wrong, timeout=5)
    assert answer.status_code == 401 and answer.json()["code"] == 40110000


def test_order_json_has_every_field_as_strings_and_nulls(server):
    answer = call(server, "POST", "/v2/orders", json=market())
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == ORDER_FIELDS
    assert (body["qty"], body["filled_qty"], body["filled_avg_price"]) == ("10", "0", None)
    assert body["legs"] is None and body["order_class"] == "" and body["order_type"] == "market"
    assert body["created_at"].endswith("Z") and body["submitted_at"] == body["created_at"]


def test_routes_and_status_codes(server):
    placed = call(server, "POST", "/v2/orders", json=market(client_order_id="c1")).json()
    got = call(server, "GET", "/v2/orders:by_client_order_id", params={"client_order_id": "c1"})
    assert got.status_code == 200 and got.json()["id"] == placed["id"]
    missing = call(server, "GET", "/v2/orders:by_client_order_id", params={"client_order_id": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == 40410000
    assert call(server, "GET", "/v2/orders").json()[0]["id"] == placed["id"]
    server.advance()
    assert call(server, "GET", "/v2/orders").json() == []
    assert len(call(server, "GET", "/v2/orders", params={"status": "closed"}).json()) == 1
    position = call(server, "GET", "/v2/positions/AAPL").json()
    assert position["qty"] == "10" and position["market_value"] == "1000.1"
    none = call(server, "GET", "/v2/positions/MSFT")
    assert none.status_code == 404
    assert none.json() == {"code": 40410000, "message": "position does not exist"}

    gtc = market(type="limit", limit_price="50", time_in_force="gtc")
    resting = call(server, "POST", "/v2/orders", json=gtc).json()
    replaced = call(server, "PATCH", f"/v2/orders/{resting['id']}", json={"limit_price": "51"})
    assert replaced.status_code == 200 and replaced.json()["replaces"] == resting["id"]
    cancel = call(server, "DELETE", f"/v2/orders/{replaced.json()['id']}")
    assert cancel.status_code == 204 and cancel.content == b""
    again = call(server, "DELETE", f"/v2/orders/{replaced.json()['id']}")
    assert again.status_code == 422 and again.json()["code"] == 42210000
    assert call(server, "DELETE", "/v2/orders/unknown").status_code == 404

    call(server, "POST", "/v2/orders", json=market(type="limit", limit_price="50"))
    bulk = call(server, "DELETE", "/v2/orders")
    assert bulk.status_code == 207 and [e["status"] for e in bulk.json()] == [200]
    closed = call(server, "DELETE", "/v2/positions", params={"cancel_orders": "true"})
    assert closed.status_code == 207
    assert [(e["symbol"], e["status"], e["body"]["side"]) for e in closed.json()] == [
        ("AAPL", 200, "sell")
    ]


def test_errors_are_code_and_message(server):
    bad_json = requests.post(server.url + "/v2/orders", data=b"{nope", headers=AUTH, timeout=5)
    assert bad_json.status_code == 400
    assert bad_json.json() == {"code": 40010000, "message": "failed to decode request body"}
    power = call(server, "POST", "/v2/orders", json=market(qty="100000"))
    assert power.status_code == 403
    assert power.json()["message"] == "insufficient buying power" and "buying_power" in power.json()
    call(server, "POST", "/v2/orders", json=market(client_order_id="dup"))
    dup = call(server, "POST", "/v2/orders", json=market(client_order_id="dup"))
    assert dup.status_code == 422 and dup.json()["message"] == "client_order_id must be unique"


def test_account_clock_and_calendar(server):
    account = call(server, "GET", "/v2/account").json()
    assert account["cash"] == "100000" and account["portfolio_value"] == account["equity"]
    assert account["account_number"].startswith("PA") and "pattern_day_trader" not in account
    clock = call(server, "GET", "/v2/clock").json()
    assert clock["is_open"] is True and clock["next_close"] == "2024-03-05T16:00:00-05:00"
    assert clock["timestamp"].startswith("2024-03-05T09:30:00")
    days = call(server, "GET", "/v2/calendar", params={"start": "2024-03-08", "end": "2024-03-11"})
    assert [(d["date"], d["open"], d["close"]) for d in days.json()] == [
        ("2024-03-08", "09:30", "16:00"), ("2024-03-11", "09:30", "16:00"),
    ]  # fmt: skip
    assert days.json()[0]["settlement_date"] == "2024-03-11"


def test_advance_to_and_the_clock(server):
    closes = int(server.exchange.bars.ts_ns[389]) + 60 * 10**9
    assert server.advance_to(closes) == 390
    assert call(server, "GET", "/v2/clock").json()["is_open"] is False
    assert server.advance_to(closes) == 0


def test_rate_limit_headers_and_429():
    exchange = PaperExchange(session_bars(("2024-03-05",), minutes=5))
    with EmulatorServer(exchange, rate_limit_per_min=3) as server:
        answers = [call(server, "GET", "/v2/clock") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[0].headers["X-RateLimit-Limit"] == "3"
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert int(answers[3].headers["X-RateLimit-Reset"]) % 60 == 0


def test_fault_injection(server):
    server.inject_429(1)
    server.inject_5xx(1)
    assert call(server, "GET", "/v2/clock").status_code == 429
    assert call(server, "GET", "/v2/clock").status_code == 500
    assert call(server, "GET", "/v2/clock").status_code == 200
    server.inject_5xx(1, after_processing=True)
    assert call(server, "POST", "/v2/orders", json=market()).status_code == 500
    assert len(call(server, "GET", "/v2/orders").json()) == 1  # it took effect


def test_listeners_run_on_the_server_thread(server):
    import threading

    threads = set()
    server.call(
        server.exchange.add_listener, lambda kind, payload: threads.add(threading.get_ident())
    )
    server.advance()
    assert threads and threading.get_ident() not in threads


def test_paper_sim_command_serves_steps_and_stops_on_sigterm(tmp_path):
    import os
    import queue
    import re
    import signal
    import subprocess
    import sys
    import threading

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PYTHONUNBUFFERED": "1"}
    env.pop("POLYGON_API_KEY", None)
    env.pop("BARLAB_CONFIG", None)
    main = "import sys; from barlab.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", main, "paper-sim", "--port", "0", "--source", "demo", "--step",
            "--symbols", "AAPL", "--from", "2024-03-05", "--to", "2024-03-05"]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:

        def read_until(pattern: str) -> re.Match[str]:
            seen = []
            while True:
                try:
                    seen.append(lines.get(timeout=60))
                except queue.Empty:
                    raise AssertionError(f"no {pattern!r} in {seen}") from None
                if found := re.search(pattern, seen[-1]):
                    return found

        url = read_until(r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        read_until(r"export APCA_API_BASE_URL=http://127\.0\.0\.1:\d+")
        headers = {"APCA-API-KEY-ID": "any", "APCA-API-SECRET-KEY": "thing"}
        clock = requests.get(url + "/v2/clock", headers=headers, timeout=5).json()
        assert clock["timestamp"].startswith("2024-03-05T09:30:00")
        proc.stdin.write("\n")
        proc.stdin.flush()
        read_until(r"bar 0 closed; now 2024-03-05T09:31")
        clock = requests.get(url + "/v2/clock", headers=headers, timeout=5).json()
        assert clock["timestamp"].startswith("2024-03-05T09:31:00")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        read_until("paper-sim stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
