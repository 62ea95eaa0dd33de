"""`hotspotctl` as an operator uses it: human units in, tables or JSON out, one line per mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotspotd import schema
from tests.conftest import Ctl


def ok(result):  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result, *, contains: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error")]
    assert len(lines) == 1, result.output
    assert contains in lines[0], result.output


@pytest.fixture
def ready(ctl: Ctl) -> Ctl:
    ok(ctl("db", "upgrade"))
    ok(
        ctl(
            "plan",
            "add",
            "Harian",
            "--price",
            "5000",
            "--validity",
            "1d",
            "--time",
            "3h",
            "--data",
            "1GB",
            "--down",
            "2M",
            "--up",
            "1M",
            "--devices",
            "1",
            "--idle",
            "15m",
        )
    )
    return ctl


def test_db_upgrade_reports_wal_and_is_repeatable(ctl: Ctl) -> None:
    head = schema.head()
    first = ok(ctl("db", "upgrade"))
    assert f"upgraded from empty to revision {head}" in first.output
    assert "journal wal" in first.output
    assert f"already at revision {head}" in ok(ctl("db", "upgrade")).output
    assert f"database revision {head}" in ok(ctl("db", "status")).output


def test_commands_refuse_an_unmigrated_database(ctl: Ctl) -> None:
    one_line_error(ctl("plan", "list"), contains="run `hotspotctl db upgrade`")


def test_plan_add_with_the_documented_example(ready: Ctl) -> None:
    plans = json.loads(ok(ready("plan", "list", "--json")).output)
    assert plans == [
        {
            "name": "Harian",
            "price_rp": 5000,
            "validity_s": 86400,
            "time_s": 10800,
            "data_bytes": 10**9,
            "down_bps": 2_000_000,
            "up_bps": 1_000_000,
            "devices": 1,
            "idle_s": 900,
            "retired": False,
            "vouchers_unused": 0,
            "vouchers_active": 0,
        }
    ]
    table = ok(ready("plan", "list")).output
    assert "Harian" in table and "Rp 5.000" in table and "2M/1M" in table and "15m" in table


def test_plan_left_out_limits_mean_none_but_idle_is_15_minutes(ready: Ctl) -> None:
    ok(ready("plan", "add", "Bebas", "--price", "Rp 10.000"))
    ok(ready("plan", "add", "Kantor", "--price", "0", "--idle", "none"))
    listed = {p["name"]: p for p in json.loads(ready("plan", "list", "--json").output)}
    bebas = listed["Bebas"]
    assert bebas["price_rp"] == 10000
    assert all(bebas[k] is None for k in ("validity_s", "time_s", "data_bytes", "down_bps"))
    assert bebas["idle_s"] == 15 * 60  # an abandoned session does not stay open
    assert listed["Kantor"]["idle_s"] is None  # unless the operator says so


def test_plan_edit_and_retire(ready: Ctl) -> None:
    ok(ready("plan", "edit", "harian", "--time", "none", "--data", "2GB", "--price", "6000"))
    (plan,) = json.loads(ready("plan", "list", "--json").output)
    assert plan["time_s"] is None and plan["data_bytes"] == 2 * 10**9 and plan["price_rp"] == 6000
    assert plan["validity_s"] == 86400
    one_line_error(ready("plan", "edit", "Harian"), contains="nothing to change")
    ok(ready("plan", "retire", "Harian"))
    assert json.loads(ready("plan", "list", "--json").output) == []
    assert json.loads(ready("plan", "list", "--all", "--json").output)[0]["retired"] is True
    one_line_error(ready("voucher", "make", "--plan", "Harian", "--count", "1"), contains="retired")


def test_voucher_make_json_check_and_revoke(ready: Ctl) -> None:
    made = json.loads(
        ok(ready("voucher", "make", "--plan", "Harian", "--count", "5", "--json")).output
    )
    assert len(made) == 5 and len(set(made)) == 5
    code = made[0]
    check = json.loads(ok(ready("voucher", "check", code.lower(), "--json")).output)
    assert check["state"] == "unused" and check["code"] == code and check["plan"] == "Harian"
    assert check["time_left_s"] == 10800 and check["data_left_bytes"] == 10**9
    # spaces instead of dashes, and the code split over several words, as people type it
    ok(ready("voucher", "check", *code.split("-")))

    ok(ready("voucher", "revoke", code))
    revoked = ready("voucher", "check", code, "--json")
    assert revoked.exit_code == 1
    assert json.loads(revoked.output)["state"] == "revoked"
    one_line_error(ready("voucher", "revoke", code), contains="revoked already")

    listed = json.loads(ok(ready("voucher", "list", "--json")).output)
    assert {v["code"] for v in listed} == set(made)
    assert [v["state"] for v in listed].count("revoked") == 1
    table = ok(ready("voucher", "list", "--state", "unused")).output
    assert code not in table and made[1] in table


def test_voucher_make_human_output_and_digits(ready: Ctl) -> None:
    out = ok(
        ready(
            "voucher",
            "make",
            "--plan",
            "Harian",
            "--count",
            "2",
            "--batch",
            "Warung",
            "--digits",
            "--by",
            "siti",
        )
    ).output
    assert "batch 'Warung': 2 × Harian (Rp 5.000)" in out
    codes = [ln for ln in out.splitlines()[1:] if ln]
    assert len(codes) == 2 and all(c.replace(" ", "").isdigit() for c in codes)


def test_voucher_check_states_typo_and_unknown(ready: Ctl) -> None:
    (code,) = json.loads(
        ready("voucher", "make", "--plan", "Harian", "--count", "1", "--json").output
    )
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    result = ready("voucher", "check", typo, "--json")
    assert result.exit_code == 1 and json.loads(result.output)["state"] == "typo"
    from hotspotd.core import codes

    unknown = ready("voucher", "check", codes.make(), "--json")
    assert unknown.exit_code == 1 and json.loads(unknown.output)["state"] == "unknown"


def test_typo_is_caught_even_without_a_database(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "sqlite:////nonexistent-dir/x/hotspot.db"\n')
    result = Ctl(cfg)("voucher", "check", "ABC-DEF-GHK", "--json")
    assert json.loads(result.output)["state"] == "typo"


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["plan", "add", "X", "--price", "5000", "--time", "3x"], "not a duration"),
        (["plan", "add", "X", "--price", "lima ribu"], "not a price"),
        (["plan", "add", "X", "--price", "1", "--data", "lots"], "not a data size"),
        (["plan", "add", "X", "--price", "1", "--down", "fast"], "not a rate"),
        (["plan", "add", "X", "--price", "1", "--devices", "0"], "above zero"),
        (["plan", "add", "X"], "Missing option '--price'"),
        (["plan", "add", "Harian", "--price", "1"], "exists already"),
        (["plan", "edit", "Nope", "--price", "1"], "no plan named 'Nope'"),
        (["voucher", "make", "--plan", "Nope", "--count", "1"], "no plan named 'Nope'"),
        (["voucher", "make", "--plan", "Harian", "--count", "0"], "above zero"),
        (["voucher", "make", "--plan", "Harian", "--count", "99999"], "between 1 and 10000"),
        (["voucher", "revoke", "ABC-DEF-GHK"], "typo"),
        (["voucher", "list", "--batch", "Nope"], "no batch named"),
    ],
)
def test_bad_input_gives_one_clear_line(ready: Ctl, args: list[str], contains: str) -> None:
    one_line_error(ready(*args), contains=contains)


def test_bad_config_gives_one_line_naming_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[village]\ntimezone = "Mars/Olympus"\n')
    one_line_error(Ctl(cfg)("plan", "list"), contains=f"{cfg}: village.timezone: unknown time zone")


def test_unwritable_database_folder_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{blocker}/sub/hotspot.db"\n')
    one_line_error(Ctl(cfg)("db", "upgrade"), contains=f"{blocker}/sub: Not a directory")


def test_installed_console_script_runs(tmp_path: Path, config_file: Path) -> None:
    """The real entry point in its own process: exit codes and stderr as a shell sees them."""
    env = {**os.environ, "HOTSPOT_CONFIG": str(config_file)}
    exe = Path(sys.executable).with_name("hotspotctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hotspotd.cli"]
    up = subprocess.run(
        [*cmd, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert up.returncode == 0, up.stderr
    bad = subprocess.run(
        [*cmd, "voucher", "make", "--plan", "X", "--count", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "Error: no plan named 'X'"
