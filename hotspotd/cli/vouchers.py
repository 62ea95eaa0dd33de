"""`hotspotctl voucher`: making batches, listing, checking and revoking codes."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from hotspotd.cli.common import (
    COUNT,
    NONE,
    Env,
    Group,
    actor,
    ask_daemon_or_none,
    dump,
    login_name,
    pass_env,
    table,
)
from hotspotd.core import codes, units, vouchers
from hotspotd.core.models import VoucherState
from hotspotd.core.records import iso, voucher_record
from hotspotd.errors import InvalidInput


@click.group(cls=Group)
def voucher() -> None:
    """Vouchers: make batches, list, check and revoke codes."""


@voucher.command("make")
@click.option("--plan", "plan_name", required=True, help="The plan the vouchers are for.")
@click.option("--count", type=COUNT, required=True, help=f"How many (1 to {vouchers.MAX_BATCH}).")
@click.option("--batch", "batch_name", help="A name for the batch (default: plan and time).")
@click.option("--note", help=f"A note: whose stack, where sold (up to {vouchers.MAX_NOTE}).")
@click.option("--digits", is_flag=True, help="Digits-only codes, easier on some phones.")
@click.option("--by", "created_by", help="Who made them (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print the list of codes as JSON.")
@pass_env
def voucher_make(
    env: Env,
    plan_name: str,
    count: Any,
    batch_name: str | None,
    note: str | None,
    digits: bool,
    created_by: str | None,
    as_json: bool,
) -> None:
    """Make a batch of vouchers (named after the plan and the village's time if not named)."""
    if count is NONE:
        raise InvalidInput("--count needs a number")
    kind = codes.CodeKind.DIGITS if digits else codes.CodeKind.ALNUM
    with env.transaction() as session:
        batch, made = vouchers.make_batch(
            session,
            plan_name=plan_name,
            count=count,
            created_by=created_by or login_name(),
            now=env.now(),
            batch_name=batch_name,
            kind=kind,
            note=note,
            zone=env.config.village.tz,
        )
        if as_json:
            dump([codes.display(v.code) for v in made])
            return
        click.echo(
            f"batch {batch.name!r}: {len(made)} × {batch.plan.name} "
            f"({units.format_rupiah(batch.plan.price_rp)})"
            + (f" — {batch.note}" if batch.note else "")
        )
        for v in made:
            click.echo(codes.display(v.code))


@voucher.command("list")
@click.option("--plan", "plan_name", help="Only this plan.")
@click.option("--batch", "batch_name", help="Only this batch.")
@click.option(
    "--state",
    type=click.Choice([s.value for s in VoucherState]),
    help="Only vouchers in this recorded state.",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_env
def voucher_list(
    env: Env,
    plan_name: str | None,
    batch_name: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List vouchers, newest first."""
    now = env.now()
    with env.transaction() as session:
        found = vouchers.listing(
            session,
            plan_name=plan_name,
            batch_name=batch_name,
            state=VoucherState(state) if state else None,
            limit=limit,
        )
        if as_json:
            dump([voucher_record(v, now) for v in found])
            return
        if not found:
            click.echo("no vouchers found")
            return
        rows = []
        for v in found:
            item = voucher_record(v, now)
            rows.append(
                [
                    item["code"],
                    v.plan.name,
                    item["state"],
                    units.format_duration(item["time_left_s"]),
                    units.format_size(item["data_left_bytes"]),
                    v.batch.name,
                ]
            )
        click.echo(table(["code", "plan", "state", "time left", "data left", "batch"], rows))


@voucher.command("check")
@click.argument("code", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@pass_env
def voucher_check(env: Env, code: tuple[str, ...], as_json: bool) -> None:
    """Tell what a code is: typo, unknown, unused, active, expired, used_up or revoked.

    Spaces and dashes are ignored, so `voucher check abc def ghj` works too. Exit status 0
    when the code can be used now (unused or active), 1 otherwise.
    """
    now = env.now()
    typed = " ".join(code)
    checked = codes.check(typed)
    if not checked.ok:  # a typo never reaches the database
        _report_check(
            env,
            typed,
            vouchers.CheckResult(vouchers.CheckState.TYPO, checked.detail),
            now,
            as_json,
        )
    else:
        with env.transaction() as session:
            _report_check(env, typed, vouchers.check(session, typed, now), now, as_json)


def _report_check(
    env: Env, typed: str, result: vouchers.CheckResult, now: datetime, as_json: bool
) -> None:
    v = result.voucher
    if as_json:
        out: dict[str, Any] = dict(voucher_record(v, now)) if v is not None else {}
        out.update(state=result.state.value, message=result.message)
        if v is not None:
            out["takeovers"] = [{"at": iso(e.at), "detail": e.detail} for e in result.takeovers]
        dump(out)
    else:
        shown = codes.display(v.code) if v is not None else typed
        click.echo(f"{shown}: {result.state.value} — {result.message}")
        if v is not None and result.standing is not None:
            s = result.standing
            click.echo(
                f"plan {v.plan.name}; time left {units.format_duration(s.seconds_left)}"
                f"; data left {units.format_size(s.data_left)}"
                + (f"; valid until {_local(env, s.valid_until)}" if s.valid_until else "")
            )
        if result.takeovers:
            last = result.takeovers[0]
            click.echo(
                f"taken over by another device {len(result.takeovers)} time(s); last "
                f"{_local(env, last.at)}: {last.detail}"
            )
    if result.state not in (vouchers.CheckState.UNUSED, vouchers.CheckState.ACTIVE):
        sys.exit(1)


def _local(env: Env, when: datetime) -> str:
    return when.astimezone(env.config.village.tz).strftime("%Y-%m-%d %H:%M %Z")


@voucher.command("revoke")
@click.argument("code")
@click.option("--by", help="Who revokes it (default: your user name).")
@pass_env
def voucher_revoke(env: Env, code: str, by: str | None) -> None:
    """Revoke a voucher (a lost or stolen card). Its devices are cut off before this returns."""
    answer = ask_daemon_or_none(env, "revoke", by, code=code)
    if answer is None:  # no hotspotd: the database alone, and the kernel follows at its start
        with env.transaction() as session:
            revoked = vouchers.revoke(session, code, actor=actor(by), now=env.now())
            answer = {"code": codes.display(revoked.code), "cut": []}
    click.echo(f"revoked {answer['code']}")
    if answer["cut"]:
        click.echo(f"cut off: {', '.join(answer['cut'])}")
