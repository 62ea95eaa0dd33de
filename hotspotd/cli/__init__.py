"""`hotspotctl`: the operator's command line.

Human units in (`--time 3h --data 1GB --down 2M`), readable tables out, `--json` for scripts.
Bad input gives one clear line and a non-zero exit, never a traceback.

This module owns the root group and `main`; each command group lives in its own module
(`db`, `plans`, `vouchers`, `market`, `lessons`, `operators`, `daemon`, `backup`), what they
share in `common`.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from hotspotd.cli import backup, daemon, db, lessons, market, operators, plans, vouchers
from hotspotd.cli.common import Env, Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (default $HOTSPOT_CONFIG, else /etc/hotspot/hotspot.toml).",
)
@click.version_option(package_name="hotspot")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Manage the village hotspot: database, plans, vouchers, devices, market, lessons, accounts."""
    # `cli.main(obj=clock)` / `CliRunner().invoke(cli, args, obj=clock)` hands in a clock.
    ctx.obj = Env(config_path, ctx.obj if ctx.obj is not None else None)


cli.add_command(db.db_group, "db")
cli.add_command(plans.plan)
cli.add_command(vouchers.voucher)
cli.add_command(market.market)
cli.add_command(lessons.lesson)
cli.add_command(operators.operator)
cli.add_command(daemon.status)
cli.add_command(daemon.online)
cli.add_command(daemon.kick)
cli.add_command(daemon.extend)
for command in daemon.mac_commands:  # trust, untrust, block, unblock
    cli.add_command(command)
cli.add_command(backup.backup_command)  # hotspotctl backup FILE [--force]
cli.add_command(backup.restore_command)  # hotspotctl restore FILE [--yes]


def main() -> NoReturn:
    try:
        cli.main(prog_name="hotspotctl")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)  # pragma: no cover - cli.main always exits
