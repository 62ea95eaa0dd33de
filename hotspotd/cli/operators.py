"""`hotspotctl operator`: the accounts that sign in to the operator's web UI.

A password is typed at a hidden prompt (twice) or read from the first line of a file only its
owner may read; never an option, which `ps` and the shell's history would show.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import stat
from collections.abc import Sequence
from datetime import datetime

import click

from hotspotd.cli.common import Env, Group, actor, dump, pass_env, table
from hotspotd.core import operators
from hotspotd.core.models import Operator, Role
from hotspotd.core.records import operator_record
from hotspotd.errors import Conflict, InvalidInput, NotFound

PASSWORD_FILE = click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True),
    help="Read the password from this file's first line (chmod 600: only you may read it).",
)


def read_password_file(path: str) -> str:
    """The first line of a file that only its owner may read or change."""
    with open(path, encoding="utf-8") as f:
        if stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o066:
            raise InvalidInput(
                f"{path}: others may read or change this file; `chmod 600 {path}` first",
                reason="password_file_open",
            )
        line = f.readline().rstrip("\r\n")
    if not line:
        raise InvalidInput(f"{path}: the first line is empty", reason="weak_password")
    return line


def _password(path: str | None) -> str:
    if path is not None:
        return read_password_file(path)
    value: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt="Password again", err=True
    )
    return value


def _local(env: Env, when: datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(env.config.village.tz).strftime("%Y-%m-%d %H:%M %Z")


def _rows(env: Env, items: Sequence[Operator]) -> str:
    return table(
        ["username", "role", "created", "disabled"],
        [[o.username, o.role.value, _local(env, o.created_at), _local(env, o.disabled_at)]
         for o in items],
    )  # fmt: skip


@click.group(cls=Group)
def operator() -> None:
    """Accounts for the operator's web UI: admin, operator, or kominfo (reads only)."""


@operator.command("add")
@click.argument("name")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in Role]), help="What it may do."
)
@PASSWORD_FILE
@pass_env
def operator_add(env: Env, name: str, role: str, password_file: str | None) -> None:
    """Add an account; the password is asked for (twice) unless --password-file is given.

    Example: hotspotctl operator add siti --role admin
    """
    with env.transaction() as session:  # told before the password is asked
        try:
            taken = operators.find(session, name)
        except NotFound:
            pass
        else:
            raise Conflict(f"an operator named {taken.username!r} exists already")
    password = _password(password_file)
    with env.transaction() as session:
        added = operators.add(session, name, Role(role), password, actor=actor(), now=env.now())
        click.echo(f"added operator {added.username} ({added.role.value})")


@operator.command("passwd")
@click.argument("name")
@PASSWORD_FILE
@pass_env
def operator_passwd(env: Env, name: str, password_file: str | None) -> None:
    """Give an account a new password; its web sessions end."""
    with env.transaction() as session:
        operators.find(session, name)  # an unknown name is told before the password is asked
    password = _password(password_file)
    with env.transaction() as session:
        changed = operators.set_password(session, name, password, actor=actor(), now=env.now())
        click.echo(f"new password for {changed.username}; its web sessions have ended")


@operator.command("disable")
@click.argument("name")
@pass_env
def operator_disable(env: Env, name: str) -> None:
    """Stop an account from signing in, and end its web sessions (not the last admin)."""
    with env.transaction() as session:
        done = operators.disable(session, name, actor=actor(), now=env.now())
        click.echo(f"operator {done.username} is disabled")


@operator.command("enable")
@click.argument("name")
@pass_env
def operator_enable(env: Env, name: str) -> None:
    """Let a disabled account sign in again, with the password it had."""
    with env.transaction() as session:
        done = operators.enable(session, name, actor=actor(), now=env.now())
        click.echo(f"operator {done.username} is enabled")


@operator.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def operator_list(env: Env, as_json: bool) -> None:
    """Every account, disabled ones too."""
    with env.transaction() as session:
        items = operators.list_all(session)
        if as_json:
            dump([operator_record(o) for o in items])
        elif not items:
            click.echo("no operators yet: add one with `hotspotctl operator add NAME --role admin`")
        else:
            click.echo(_rows(env, items))


@operator.command("certificate")
@pass_env
def operator_certificate(env: Env) -> None:
    """The operator UI's address and its certificate's SHA-256 fingerprint, to compare once
    with what the browser shows the first time (the certificate is self-signed)."""
    cfg = env.config
    pair = cfg.operator.certificate(cfg.portal)
    if pair is None:
        raise InvalidInput("no certificate for the operator UI: set operator.tls_cert/tls_key")
    try:
        pem = pair[0].read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read {pair[0]}: {exc.strerror}") from None
    click.echo(f"https://{cfg.portal.address}:{cfg.operator.port}/")
    click.echo(f"SHA-256 {certificate_fingerprint(pem)}")


def certificate_fingerprint(pem: str) -> str:
    """`AB:CD:...`, as browsers show it, of the first certificate in a PEM file."""
    try:
        der = ssl.PEM_cert_to_DER_cert(pem)
    except ValueError:
        raise InvalidInput("that file holds no PEM certificate") from None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
