"""`hotspotctl lesson`: the learning page's lessons, imported from files."""

from __future__ import annotations

import click

from hotspotd.cli.common import (
    Env,
    Group,
    dump,
    pass_env,
    table,
)
from hotspotd.core import content
from hotspotd.core.records import lesson_record
from hotspotd.errors import InvalidInput


@click.group(cls=Group)
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
            dump([lesson_record(i) for i in items])
        elif not items:
            click.echo("no lessons yet: hotspotctl lesson import config/lessons/*.txt")
        else:
            click.echo(
                table(
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
