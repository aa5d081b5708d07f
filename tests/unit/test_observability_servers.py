"""CI must run the real-server tests: a missing binary fails there and only skips elsewhere."""

from __future__ import annotations

import pytest

from tests.observability_servers import require_binary

MISSING = "livewatch-no-such-binary"


def test_missing_binary_fails_under_ci_with_the_install_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y prometheus prometheus-alertmanager"):
        require_binary(MISSING)


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"{MISSING} not found"):
        require_binary(MISSING)


def test_installed_binary_is_found():
    assert require_binary("sh").endswith("/sh")
