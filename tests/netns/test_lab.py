"""The lab cleans up after crashed runs and refuses to skip silently in CI."""

from __future__ import annotations

import os
import subprocess

import pytest

import tests.conftest
from tests.netns import conftest as netns_conftest
from tests.netns.lab import PREFIX, clean_leftovers, run

pytestmark = pytest.mark.netns


def test_leftovers_of_dead_runs_go_and_live_runs_stay() -> None:
    netns_conftest.check_requirements()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, mine = f"{PREFIX}{dead.pid}-crashed", f"{PREFIX}{os.getpid()}-alive"
    run("ip", "netns", "add", stale)
    run("ip", "netns", "add", mine)
    try:
        removed = clean_leftovers()
        names = run("ip", "netns", "list").stdout
        assert stale in removed and stale not in names
        assert mine in names
    finally:
        run("ip", "netns", "del", stale, check=False)
        run("ip", "netns", "del", mine, check=False)


def test_missing_tool_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(tests.conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        netns_conftest.check_requirements()
    monkeypatch.setattr(tests.conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception):
        netns_conftest.check_requirements()
