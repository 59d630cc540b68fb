"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh working directory with its own (empty) user config directory."""
    (tmp_path / "xdg").mkdir()
    return tmp_path
