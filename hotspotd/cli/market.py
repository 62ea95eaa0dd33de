"""`hotspotctl market`: the BUMDes market page's listings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from hotspotd.cli.common import (
    NONE,
    PRICE,
    Env,
    Group,
    dump,
    pass_env,
    table,
)
from hotspotd.core import content, units
from hotspotd.core.models import Listing
from hotspotd.core.records import listing_record
from hotspotd.errors import InvalidInput


def _listing_rows(items: Sequence[Listing]) -> str:
    return table(
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


@click.group(cls=Group)
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
            dump(listing_record(item))
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
            dump([listing_record(i) for i in items])
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
