"""The commands answered by the running hotspotd (`online`, `kick`, `extend`, `trust`, ...)
through its control socket, and `status`, which says whether it runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from hotspotd.cli.common import (
    DURATION,
    NONE,
    SIZE,
    Env,
    dump,
    operator,
    pass_env,
    table,
)
from hotspotd.clock import ClockReport, read_published
from hotspotd.control.client import answers
from hotspotd.core import queries, units
from hotspotd.core.models import ClockState
from hotspotd.core.records import iso
from hotspotd.errors import InvalidInput


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def status(env: Env, as_json: bool) -> None:
    """Is hotspotd running, is the router's clock set (and since when), who is on."""
    cfg = env.config
    running = answers(cfg.daemon.control_socket)
    live = read_published(cfg.daemon.clock_file) if running else None
    with env.transaction() as session:
        row = session.get(ClockState, 1) or ClockState(corrections=0)
        report = live or ClockReport(
            synced=row.unsynced_since is None and row.synced_at is not None,
            since=row.unsynced_since or row.synced_at,
            offset_s=0.0,
            corrections=row.corrections,
        )
        online = len(queries.open_sessions(session))
        heartbeat = row.heartbeat_at
    if as_json:
        dump(
            {
                "daemon_running": running,
                "clock": report.as_json(),
                "clock_from": "daemon" if live else "database",
                "last_heartbeat": iso(heartbeat),
                "online": online,
            }
        )
        return
    tz = cfg.village.tz

    def local(moment: datetime | None) -> str:
        return f"{moment.astimezone(tz):%Y-%m-%d %H:%M %Z}" if moment else "never"

    click.echo(f"hotspotd: {'running' if running else 'NOT RUNNING'}")
    if report.synced:
        clock_line = f"set (NTP) since {local(report.since)}"
    elif report.since is not None:
        clock_line = (
            f"NOT SET: provisional time since {local(report.since)}; validity of cards first "
            "used before then waits, and these times move when NTP answers"
        )
    else:
        clock_line = "not known yet (hotspotd has not run)"
    click.echo(f"clock: {clock_line}")
    if report.corrections:
        click.echo(f"clock corrections so far: {report.corrections}")
    if not live:
        click.echo(f"(from the database: hotspotd last ran at {local(heartbeat)})")
    click.echo(f"online: {online} device{'s' if online != 1 else ''}")


@click.command("online")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def online(env: Env, as_json: bool) -> None:
    """Who is online now, and how fast (from the daemon)."""
    rows = operator(env).call("online")
    if as_json:
        dump(rows)
        return
    if not rows:
        click.echo("nobody is online")
        return
    click.echo(
        table(
            ["ip", "mac", "name", "plan", "down", "up", "idle", "time left", "data left"],
            [
                [
                    r["ip"],
                    r["mac"],
                    (r["hostname"] or "-")[:20],
                    r["plan"],
                    units.format_rate(r["down_bps"]) + "bit/s",
                    units.format_rate(r["up_bps"]) + "bit/s",
                    units.format_duration(r["idle_s"]),
                    units.format_duration(r["seconds_left"]),
                    units.format_size(r["data_left"]),
                ]
                for r in rows
            ],
        )
    )


@click.command("kick")
@click.argument("target")
@pass_env
def kick(env: Env, target: str) -> None:
    """Log out a device now, by IP address, MAC or voucher code. It may log in again."""
    answer = operator(env).call("kick", target=target)
    click.echo(f"kicked {', '.join(answer['kicked'])}")


@click.command("extend")
@click.argument("code")
@click.option("--time", "extra_time", type=DURATION, help="More time (e.g. 1h).")
@click.option("--data", "extra_data", type=SIZE, help="More data (e.g. 500MB).")
@pass_env
def extend(env: Env, code: str, extra_time: Any, extra_data: Any) -> None:
    """Give a voucher more time (its validity moves too) and/or data."""
    if extra_time in (None, NONE) and extra_data in (None, NONE):
        raise InvalidInput("give --time and/or --data")
    answer = operator(env).call(
        "extend",
        code=code,
        seconds=0 if extra_time in (None, NONE) else extra_time,
        bytes=0 if extra_data in (None, NONE) else extra_data,
    )
    click.echo(
        f"{answer['code']}: time left {units.format_duration(answer['seconds_left'])}, "
        f"data left {units.format_size(answer['data_left'])}"
    )


def _mac_command(name: str, doc: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("mac")
    @pass_env
    def command(env: Env, mac: str) -> None:
        answer = operator(env).call(name, mac=mac)
        click.echo(f"{name}: {answer['mac']}")

    return command


mac_commands = [
    _mac_command("trust", "Let a device (by MAC) through without login, e.g. the warung's till."),
    _mac_command("untrust", "Make a trusted device log in like everyone else."),
    _mac_command("block", "Block a device (by MAC): no internet, not even the portal."),
    _mac_command("unblock", "Lift a block."),
]
