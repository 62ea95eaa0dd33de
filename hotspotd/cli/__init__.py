"""`hotspotctl`: the operator's command line.

Human units in (`--time 3h --data 1GB --down 2M`), readable tables out, `--json` for scripts.
Bad input gives one clear line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.cli.backup import backup_command, restore_command
from hotspotd.clock import Clock, ClockReport, SystemClock, read_published
from hotspotd.control import ControlClient
from hotspotd.core import codes, content, db, plans, sessions, units, vouchers
from hotspotd.core.models import ClockState, Listing, Plan, Voucher, VoucherState
from hotspotd.errors import DatabaseNotReady, HotspotError, InvalidInput

NONE = object()  # an option given as "none": clear the limit


class _UnitType(click.ParamType):
    """A human-unit option; "none" stands for no limit."""

    def __init__(self, name: str, parse: Callable[[str], int]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is NONE or isinstance(value, int):
            return value
        if units.is_none(str(value)):
            return NONE
        try:
            return self._parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = _UnitType("duration", units.parse_duration)
SIZE = _UnitType("size", units.parse_size)
RATE = _UnitType("rate", units.parse_rate)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"not a whole number above zero: {text!r}")
    return int(text)


COUNT = _UnitType("count", _count)


@dataclass
class Env:
    config_path: str | None
    _clock: Clock | None = None  # tests hand in the daemon's fake clock
    _config: config_mod.Config | None = None
    _engine: Engine | None = None
    json_output: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(self.config_path)
        return self._config

    @property
    def clock(self) -> Clock:
        """The system clock with the daemon's correction: the time the daemon tells."""
        if self._clock is None:
            self._clock = SystemClock(published=self.config.daemon.clock_file)
        return self._clock

    def now(self) -> datetime:
        return self.clock.now()

    def engine(self, *, create_dir: bool = False) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.config.database.url, create_dir=create_dir)
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        path = db.sqlite_path(self.config.database.url)
        if path is not None and not path.exists():  # don't leave an empty file behind
            raise DatabaseNotReady(f"no database at {path}: run `hotspotctl db upgrade`")
        engine = self.engine()
        schema.require_current(engine)
        with db.make_sessionmaker(engine).begin() as session:
            yield session


def _actor() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _friendly_db_error(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc).splitlines()[0]
    if isinstance(exc, OperationalError) and "unable to open database file" in text:
        return "cannot open the database file (does its folder exist, may you write there?)"
    return f"database error: {text}"


class _Group(click.Group):
    """Turns every expected failure into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HotspotError as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(_friendly_db_error(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _dump(obj: object) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (default $HOTSPOT_CONFIG, else /etc/hotspot/hotspot.toml).",
)
@click.version_option(package_name="hotspot")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Manage the village hotspot: database, plans, vouchers, devices, market and lessons."""
    # `cli.main(obj=clock)` / `CliRunner().invoke(cli, args, obj=clock)` hands in a clock.
    ctx.obj = Env(config_path, ctx.obj if ctx.obj is not None else None)


pass_env = click.make_pass_decorator(Env)


# ---------------------------------------------------------------- db


@cli.group(cls=_Group)
def db_group() -> None:
    """Database schema."""


cli.add_command(db_group, "db")


@db_group.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Create the database or bring it to this version's schema."""
    engine = env.engine(create_dir=True)
    before = schema.current(engine)
    schema.upgrade(engine)
    after = schema.current(engine)
    with engine.connect() as conn:
        mode = (
            conn.exec_driver_sql("PRAGMA journal_mode").scalar() if engine.name == "sqlite" else ""
        )
    said = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    extra = f", journal {mode}" if mode else ""
    click.echo(f"database {said} revision {after} ({engine.url.render_as_string()}{extra})")


@db_group.command("status")
@pass_env
def db_status(env: Env) -> None:
    """Show the schema revision of the database and the one this code needs."""
    have, want = schema.current(env.engine()), schema.head()
    click.echo(f"database revision {have or 'none'}; this code needs {want}")
    if have != want:
        sys.exit(1)


# ---------------------------------------------------------------- plans


def _plan_json(plan: Plan, unused: int | None = None, active: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": plan.name,
        "price_rp": plan.price_rp,
        "validity_s": plan.validity_s,
        "time_s": plan.time_s,
        "data_bytes": plan.data_bytes,
        "down_bps": plan.down_bps,
        "up_bps": plan.up_bps,
        "devices": plan.devices,
        "idle_s": plan.idle_s,
        "retired": plan.retired_at is not None,
    }
    if unused is not None:
        out["vouchers_unused"] = unused
        out["vouchers_active"] = active
    return out


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


def _price(text: str) -> int:
    cleaned = text.strip().lower().removeprefix("rp").strip().replace(".", "").replace(",", "")
    if not cleaned.isdigit():
        raise ValueError(f"not a price in rupiah: {text!r} (e.g. 5000)")
    return int(cleaned)


PRICE = _UnitType("price", _price)


@cli.group(cls=_Group)
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
        created = plans.add(session, name, plans.PlanTerms(price_rp=price, **clean), env.now())
        if as_json:
            _dump(_plan_json(created))
        else:
            click.echo(f"added plan {created.name!r}")
            click.echo(_table(PLAN_HEADERS, [_plan_row(created)]))


@plan.command("list")
@click.option("--all", "include_retired", is_flag=True, help="Include retired plans.")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def plan_list(env: Env, include_retired: bool, as_json: bool) -> None:
    """List plans with their unused and active vouchers."""
    with env.transaction() as session:
        rows = plans.listing(session, include_retired=include_retired)
        if as_json:
            _dump([_plan_json(p, u, a) for p, u, a in rows])
        elif not rows:
            click.echo("no plans yet: add one with `hotspotctl plan add`")
        else:
            click.echo(
                _table(
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
    with env.transaction() as session:
        edited = plans.edit(session, name, changes, new_name)
        click.echo(f"changed plan {edited.name!r}")
        click.echo(_table(PLAN_HEADERS, [_plan_row(edited)]))


@plan.command("retire")
@click.argument("name")
@pass_env
def plan_retire(env: Env, name: str) -> None:
    """Stop making vouchers for a plan; vouchers already made stay good."""
    with env.transaction() as session:
        retired = plans.retire(session, name, env.now())
        click.echo(f"retired plan {retired.name!r}")


# ---------------------------------------------------------------- vouchers


@cli.group(cls=_Group)
def voucher() -> None:
    """Vouchers: make batches, list, check and revoke codes."""


@voucher.command("make")
@click.option("--plan", "plan_name", required=True, help="The plan the vouchers are for.")
@click.option("--count", type=COUNT, required=True, help=f"How many (1 to {vouchers.MAX_BATCH}).")
@click.option("--batch", "batch_name", help="A name for the batch (default: plan and time).")
@click.option("--digits", is_flag=True, help="Digits-only codes, easier on some phones.")
@click.option("--by", "created_by", help="Who made them (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print the list of codes as JSON.")
@pass_env
def voucher_make(
    env: Env,
    plan_name: str,
    count: Any,
    batch_name: str | None,
    digits: bool,
    created_by: str | None,
    as_json: bool,
) -> None:
    """Make a batch of vouchers."""
    if count is NONE:
        raise InvalidInput("--count needs a number")
    kind = codes.CodeKind.DIGITS if digits else codes.CodeKind.ALNUM
    with env.transaction() as session:
        batch, made = vouchers.make_batch(
            session,
            plan_name=plan_name,
            count=count,
            created_by=created_by or _actor(),
            now=env.now(),
            batch_name=batch_name,
            kind=kind,
        )
        if as_json:
            _dump([codes.display(v.code) for v in made])
            return
        click.echo(
            f"batch {batch.name!r}: {len(made)} × {batch.plan.name} "
            f"({units.format_rupiah(batch.plan.price_rp)})"
        )
        for v in made:
            click.echo(codes.display(v.code))


def _voucher_json(v: Voucher, now: datetime) -> dict[str, Any]:
    standing = vouchers.standing_of(v, now)
    return {
        "code": codes.display(v.code),
        "plan": v.plan.name,
        "batch": v.batch.name,
        "price_rp": v.price_rp,
        "state": vouchers.state_now(v, now).value,
        "first_used_at": _iso(v.first_used_at),
        "used_seconds": v.used_seconds,
        "used_bytes": v.used_bytes,
        "time_left_s": standing.seconds_left,
        "data_left_bytes": standing.data_left,
        "valid_until": _iso(standing.valid_until),
    }


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
            _dump([_voucher_json(v, now) for v in found])
            return
        if not found:
            click.echo("no vouchers found")
            return
        rows = []
        for v in found:
            item = _voucher_json(v, now)
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
        click.echo(_table(["code", "plan", "state", "time left", "data left", "batch"], rows))


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
        out: dict[str, Any] = _voucher_json(v, now) if v is not None else {}
        out.update(state=result.state.value, message=result.message)
        if v is not None:
            out["takeovers"] = [{"at": _iso(e.at), "detail": e.detail} for e in result.takeovers]
        _dump(out)
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
@click.option("--by", "actor", help="Who revokes it (default: your user name).")
@pass_env
def voucher_revoke(env: Env, code: str, actor: str | None) -> None:
    """Revoke a voucher (a lost or stolen card). Its devices are cut at the next reconcile."""
    with env.transaction() as session:
        revoked = vouchers.revoke(session, code, actor=actor or _actor(), now=env.now())
        click.echo(f"revoked {codes.display(revoked.code)}")


# ---------------------------------------------------------------- market and lessons


def _listing_json(item: Listing) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "seller": item.seller,
        "price_rp": item.price_rp,
        "unit": item.unit,
        "contact": item.contact,
        "description": item.description,
        "hidden": item.hidden,
        "updated_at": _iso(item.updated_at),
    }


def _listing_rows(items: Sequence[Listing]) -> str:
    return _table(
        ["id", "title", "seller", "price", "contact", "shown"],
        [
            [
                i.id,
                i.title,
                i.seller,
                "" if i.price_rp is None else units.format_rupiah(i.price_rp) + f" {i.unit}",
                i.contact,
                "no" if i.hidden else "yes",
            ]
            for i in items
        ],
    )


def _listing_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--title", help="What is sold (at most 80 characters)."),
            click.option("--seller", help="Who sells it: a name, a shop, a group."),
            click.option("--price", type=PRICE, help="Price in rupiah; 'none' for no price."),
            click.option("--unit", help="What the price is for: 'per kg', 'per bungkus'."),
            click.option("--contact", help="Phone number to call or WhatsApp (0812...)."),
            click.option(
                "--description",
                help="Text; an empty line starts a paragraph, '- ' a list item. '-' reads stdin.",
            ),
        ]
    ):
        func = option(func)
    return func


def _description(text: str | None) -> str | None:
    return click.get_text_stream("stdin").read() if text == "-" else text


@cli.group(cls=_Group)
def market() -> None:
    """The BUMDes market page: products and services residents can read before login."""


@market.command("add")
@_listing_options
@click.option("--json", "as_json", is_flag=True)
@pass_env
def market_add(env: Env, as_json: bool, **given: Any) -> None:
    """Put a product on the market page.

    Example: hotspotctl market add --title "Keripik singkong" --seller "Bu Sari"
    --price 15000 --unit "per bungkus" --contact 0812-3456-7890
    """
    if not given["title"] or not given["seller"]:
        raise InvalidInput("a listing needs --title and --seller")
    price = given["price"]
    fields = content.ListingFields(
        title=given["title"],
        seller=given["seller"],
        description=_description(given["description"]) or "",
        price_rp=None if price is NONE else price,
        unit=given["unit"] or "",
        contact=given["contact"] or "",
    )
    with env.transaction() as session:
        item = content.add_listing(session, fields, env.now())
        if as_json:
            _dump(_listing_json(item))
        else:
            click.echo(f"added listing {item.id}")
            click.echo(_listing_rows([item]))


@market.command("edit")
@click.argument("listing_id", type=int)
@_listing_options
@pass_env
def market_edit(env: Env, listing_id: int, **given: Any) -> None:
    """Change a listing; options left out stay as they are."""
    if all(v is None for v in given.values()):
        raise InvalidInput("nothing to change: give at least one option")
    with env.transaction() as session:
        item = content.get_listing(session, listing_id, include_hidden=True)
        price = given["price"]
        fields = content.ListingFields(
            title=item.title if given["title"] is None else given["title"],
            seller=item.seller if given["seller"] is None else given["seller"],
            description=item.description
            if given["description"] is None
            else (_description(given["description"]) or ""),
            price_rp=item.price_rp if price is None else (None if price is NONE else price),
            unit=item.unit if given["unit"] is None else given["unit"],
            contact=item.contact if given["contact"] is None else given["contact"],
        )
        edited = content.edit_listing(session, listing_id, fields, env.now())
        click.echo(f"changed listing {edited.id}")
        click.echo(_listing_rows([edited]))


@market.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def market_list(env: Env, as_json: bool) -> None:
    """Every listing, hidden ones too, newest first."""
    with env.transaction() as session:
        items = content.listings(session, include_hidden=True)
        if as_json:
            _dump([_listing_json(i) for i in items])
        elif not items:
            click.echo("no listings yet: add one with `hotspotctl market add`")
        else:
            click.echo(_listing_rows(items))


@market.command("hide")
@click.argument("listing_id", type=int)
@pass_env
def market_hide(env: Env, listing_id: int) -> None:
    """Take a listing off the page (sold out); `show` puts it back."""
    with env.transaction() as session:
        content.set_listing_hidden(session, listing_id, True, env.now())
        click.echo(f"listing {listing_id} is hidden")


@market.command("show")
@click.argument("listing_id", type=int)
@pass_env
def market_show(env: Env, listing_id: int) -> None:
    """Put a hidden listing back on the page."""
    with env.transaction() as session:
        content.set_listing_hidden(session, listing_id, False, env.now())
        click.echo(f"listing {listing_id} is shown")


@market.command("remove")
@click.argument("listing_id", type=int)
@pass_env
def market_remove(env: Env, listing_id: int) -> None:
    """Delete a listing for good."""
    with env.transaction() as session:
        content.remove_listing(session, listing_id)
        click.echo(f"listing {listing_id} removed")


@cli.group(cls=_Group)
def lesson() -> None:
    """The learning page: short lessons residents can read before login."""


@lesson.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@pass_env
def lesson_import(env: Env, files: tuple[str, ...]) -> None:
    """Add or replace lessons from files (config/lessons/ has the format and a starter set).

    All files are checked first: one bad file changes nothing.
    """
    parsed = []
    for position, path in enumerate(sorted(files)):
        with open(path, encoding="utf-8") as f:
            parsed.append(content.parse_lesson(f.read(), position=position, source=path))
    slugs = [p.slug for p in parsed]
    twice = sorted({s for s in slugs if slugs.count(s) > 1})
    if twice:
        raise InvalidInput(f"the same slug in more than one file: {', '.join(twice)}")
    with env.transaction() as session:
        for fields in parsed:
            item, created = content.put_lesson(session, fields, env.now())
            click.echo(f"{'added' if created else 'replaced'} lesson {item.slug!r}")


@lesson.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def lesson_list(env: Env, as_json: bool) -> None:
    """Every lesson, hidden ones too, in shelf order."""
    with env.transaction() as session:
        items = content.lessons(session, include_hidden=True)
        if as_json:
            _dump(
                [
                    {
                        "slug": i.slug,
                        "topic": i.topic.value,
                        "title": i.title,
                        "summary": i.summary,
                        "hidden": i.hidden,
                    }
                    for i in items
                ]
            )
        elif not items:
            click.echo("no lessons yet: hotspotctl lesson import config/lessons/*.txt")
        else:
            click.echo(
                _table(
                    ["slug", "topic", "title", "shown"],
                    [[i.slug, i.topic.value, i.title, "no" if i.hidden else "yes"] for i in items],
                )
            )


@lesson.command("hide")
@click.argument("slug")
@pass_env
def lesson_hide(env: Env, slug: str) -> None:
    """Take a lesson off the page; `show` puts it back."""
    with env.transaction() as session:
        content.set_lesson_hidden(session, slug, True, env.now())
        click.echo(f"lesson {slug!r} is hidden")


@lesson.command("show")
@click.argument("slug")
@pass_env
def lesson_show(env: Env, slug: str) -> None:
    """Put a hidden lesson back on the page."""
    with env.transaction() as session:
        content.set_lesson_hidden(session, slug, False, env.now())
        click.echo(f"lesson {slug!r} is shown")


# ---------------------------------------------------------------- through the daemon


def _daemon(env: Env) -> ControlClient:
    return ControlClient(env.config.daemon.control_socket)


def _daemon_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


@cli.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def status(env: Env, as_json: bool) -> None:
    """Is hotspotd running, is the router's clock set (and since when), who is on."""
    cfg = env.config
    running = _daemon_answers(cfg.daemon.control_socket)
    live = read_published(cfg.daemon.clock_file) if running else None
    with env.transaction() as session:
        row = session.get(ClockState, 1) or ClockState(corrections=0)
        report = live or ClockReport(
            synced=row.unsynced_since is None and row.synced_at is not None,
            since=row.unsynced_since or row.synced_at,
            offset_s=0.0,
            corrections=row.corrections,
        )
        online = len(sessions.open_sessions(session))
        heartbeat = row.heartbeat_at
    if as_json:
        _dump(
            {
                "daemon_running": running,
                "clock": report.as_json(),
                "clock_from": "daemon" if live else "database",
                "last_heartbeat": _iso(heartbeat),
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


@cli.command("online")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def online(env: Env, as_json: bool) -> None:
    """Who is online now, and how fast (from the daemon)."""
    rows = _daemon(env).call("online")
    if as_json:
        _dump(rows)
        return
    if not rows:
        click.echo("nobody is online")
        return
    click.echo(
        _table(
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


@cli.command("kick")
@click.argument("target")
@pass_env
def kick(env: Env, target: str) -> None:
    """Log out a device now, by IP address, MAC or voucher code. It may log in again."""
    answer = _daemon(env).call("kick", target=target)
    click.echo(f"kicked {', '.join(answer['kicked'])}")


@cli.command("extend")
@click.argument("code")
@click.option("--time", "extra_time", type=DURATION, help="More time (e.g. 1h).")
@click.option("--data", "extra_data", type=SIZE, help="More data (e.g. 500MB).")
@pass_env
def extend(env: Env, code: str, extra_time: Any, extra_data: Any) -> None:
    """Give a voucher more time (its validity moves too) and/or data."""
    if extra_time in (None, NONE) and extra_data in (None, NONE):
        raise InvalidInput("give --time and/or --data")
    answer = _daemon(env).call(
        "extend",
        code=code,
        seconds=0 if extra_time in (None, NONE) else extra_time,
        bytes=0 if extra_data in (None, NONE) else extra_data,
    )
    click.echo(
        f"{answer['code']}: time left {units.format_duration(answer['seconds_left'])}, "
        f"data left {units.format_size(answer['data_left'])}"
    )


def _mac_command(name: str, doc: str) -> None:
    @cli.command(name, help=doc)
    @click.argument("mac")
    @pass_env
    def command(env: Env, mac: str) -> None:
        answer = _daemon(env).call(name, mac=mac)
        click.echo(f"{name}: {answer['mac']}")


_mac_command("trust", "Let a device (by MAC) through without login, e.g. the warung's till.")
_mac_command("untrust", "Make a trusted device log in like everyone else.")
_mac_command("block", "Block a device (by MAC): no internet, not even the portal.")
_mac_command("unblock", "Lift a block.")


cli.add_command(backup_command)  # hotspotctl backup FILE [--force]
cli.add_command(restore_command)  # hotspotctl restore FILE [--yes]


def main() -> NoReturn:
    try:
        cli.main(prog_name="hotspotctl")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)  # pragma: no cover - cli.main always exits


if __name__ == "__main__":
    main()
