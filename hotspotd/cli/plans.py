"""`hotspotctl plan`: plans ("paket") and their terms, in human units."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from hotspotd.cli.common import (
    COUNT,
    DURATION,
    NONE,
    PRICE,
    RATE,
    SIZE,
    Env,
    Group,
    actor,
    ask_daemon_or_none,
    dump,
    pass_env,
    table,
)
from hotspotd.core import plans, units
from hotspotd.core.models import Plan
from hotspotd.core.records import plan_record
from hotspotd.errors import InvalidInput


def _plan_row(plan: Plan) -> list[str]:
    return [
        plan.name + (" (retired)" if plan.retired_at else ""),
        units.format_rupiah(plan.price_rp),
        units.format_duration(plan.validity_s),
        units.format_duration(plan.time_s),
        units.format_size(plan.data_bytes),
        f"{units.format_rate(plan.down_bps)}/{units.format_rate(plan.up_bps)}",
        str(plan.devices) if plan.devices else "none",
        units.format_duration(plan.idle_s),
    ]


PLAN_HEADERS = ["plan", "price", "validity", "time", "data", "down/up", "devices", "idle"]

_TERM_OPTIONS = [
    ("--validity", "validity_s", DURATION, "How long after first use it stays valid (e.g. 1d)."),
    ("--time", "time_s", DURATION, "Online time allowance (e.g. 3h)."),
    ("--data", "data_bytes", SIZE, "Data allowance (e.g. 1GB, 500MB)."),
    ("--down", "down_bps", RATE, "Download rate per device (e.g. 2M)."),
    ("--up", "up_bps", RATE, "Upload rate per device (e.g. 1M)."),
    ("--devices", "devices", COUNT, "Devices at once on one voucher."),
    ("--idle", "idle_s", DURATION, "End a session idle this long (e.g. 15m)."),
]


def _term_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for flag, dest, kind, text in reversed(_TERM_OPTIONS):
        func = click.option(flag, dest, type=kind, default=None, help=text + " 'none': no limit.")(
            func
        )
    return func


@click.group(cls=Group)
def plan() -> None:
    """Plans ("paket"): price, validity, time, data, speed, devices, idle timeout."""


@plan.command("add")
@click.argument("name")
@click.option("--price", type=PRICE, required=True, help="Price in rupiah (e.g. 5000).")
@_term_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@pass_env
def plan_add(env: Env, name: str, price: Any, as_json: bool, **terms: Any) -> None:
    """Add a plan. A limit left out means no limit, but for --idle: 15m unless "none".

    Example: hotspotctl plan add Harian --price 5000 --validity 1d --time 3h --data 1GB
    --down 2M --up 1M --devices 1 --idle 15m
    """
    if price is NONE:
        raise InvalidInput("a plan needs a price (0 for free)")
    if terms.get("idle_s") is None:
        # An abandoned session should not stay open for a MAC+IP clone to ride, nor eat the
        # card's online time: plans end idle sessions unless the operator says otherwise.
        terms["idle_s"] = plans.DEFAULT_IDLE_S
    clean = {k: (None if v is NONE else v) for k, v in terms.items()}
    with env.transaction() as session:
        terms_ = plans.PlanTerms(price_rp=price, **clean)
        created = plans.add(session, name, terms_, env.now(), actor=actor())
        if as_json:
            dump(plan_record(created))
        else:
            click.echo(f"added plan {created.name!r}")
            click.echo(table(PLAN_HEADERS, [_plan_row(created)]))


@plan.command("list")
@click.option("--all", "include_retired", is_flag=True, help="Include retired plans.")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def plan_list(env: Env, include_retired: bool, as_json: bool) -> None:
    """List plans with their unused and active vouchers."""
    with env.transaction() as session:
        rows = plans.listing(session, include_retired=include_retired)
        if as_json:
            dump([plan_record(p, u, a) for p, u, a in rows])
        elif not rows:
            click.echo("no plans yet: add one with `hotspotctl plan add`")
        else:
            click.echo(
                table(
                    [*PLAN_HEADERS, "unused", "active"],
                    [[*_plan_row(p), u, a] for p, u, a in rows],
                )
            )


@plan.command("edit")
@click.argument("name")
@click.option("--name", "new_name", help="A new name.")
@click.option("--price", type=PRICE, default=None, help="New price for cards made from now on.")
@_term_options
@pass_env
def plan_edit(env: Env, name: str, new_name: str | None, price: Any, **terms: Any) -> None:
    """Change a plan. Options left out stay as they are; 'none' removes a limit.

    Cards already made keep the price they were made with; limits follow the plan.
    """
    changes: dict[str, int | None] = {
        k: (None if v is NONE else v) for k, v in terms.items() if v is not None
    }
    if price is NONE:
        raise InvalidInput("a plan needs a price (0 for free)")
    if price is not None:
        changes["price_rp"] = price
    if not changes and new_name is None:
        raise InvalidInput("nothing to change: give at least one option")
    # Through hotspotd, so the phones on the plan get its new speed and limits at once.
    answer = ask_daemon_or_none(env, "plan_edit", name=name, new_name=new_name, changes=changes)
    if answer is None:
        with env.transaction() as session:
            edited = plans.edit(session, name, changes, new_name, actor=actor(), now=env.now())
            answer = {"name": edited.name}
    with env.transaction() as session:
        edited = plans.find(session, answer["name"])
        click.echo(f"changed plan {edited.name!r}")
        click.echo(table(PLAN_HEADERS, [_plan_row(edited)]))


@plan.command("retire")
@click.argument("name")
@pass_env
def plan_retire(env: Env, name: str) -> None:
    """Stop making vouchers for a plan; vouchers already made stay good."""
    with env.transaction() as session:
        retired = plans.retire(session, name, env.now(), actor=actor())
        click.echo(f"retired plan {retired.name!r}")
