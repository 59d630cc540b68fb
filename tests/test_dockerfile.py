"""The Dockerfile's promises, checked without a Docker daemon: what it copies exists, what it
installs and runs is what pyproject.toml declares, its command parses as `backtest live`, its
health check asks the port the bridge serves, and no key file can reach the image."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

from barlab.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per line of the Dockerfile, continuations joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def one(name: str) -> str:
    (found,) = [args for instr, args in instructions() if instr == name]
    return found


def test_what_it_copies_exists_and_installs_the_live_extra():
    for instr, args in instructions():
        if instr == "COPY":
            *sources, _ = shlex.split(args)
            assert all((ROOT / s).exists() for s in sources), args
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "live" in project["optional-dependencies"]
    assert "pip install '.[live]'" in one("RUN")
    assert json.loads(one("ENTRYPOINT")) == ["backtest"]
    assert "backtest" in project["scripts"]


def test_its_command_is_a_paper_bridge_serving_metrics_on_the_exposed_port():
    argv = json.loads(one("CMD"))
    args = build_parser().parse_args(argv)
    assert args.command == "live" and args.paper and not args.live
    assert args.metrics_host == "0.0.0.0" and args.metrics_port == int(one("EXPOSE"))
    assert f"127.0.0.1:{args.metrics_port}/health" in one("HEALTHCHECK")
    assert one("STOPSIGNAL") == "SIGTERM"  # the bridge's clean shutdown


def test_keys_and_local_state_never_reach_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".env.*", "reports", "data"} <= set(ignored)
    assert not any("APCA_API" in args for instr, args in instructions() if instr in ("ENV", "ARG"))
    assert one("USER") != "root"
