"""`hotspotctl operator`: web UI accounts; a password only from a prompt or a private file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hotspotd.core import db as dbmod
from hotspotd.core import operators
from hotspotd.core.models import AuditEvent, Operator
from tests.conftest import NOW, Ctl
from tests.unit.test_cli import ok, one_line_error

PW = "kopi-tubruk-pagi"


@pytest.fixture
def ready(ctl: Ctl, monkeypatch: pytest.MonkeyPatch) -> Ctl:
    monkeypatch.setenv("SUDO_USER", "pak_rt")
    ok(ctl("db", "upgrade"))
    return ctl


@pytest.fixture
def database(db_url: str) -> Iterator[Engine]:
    eng = dbmod.make_engine(db_url)
    yield eng
    eng.dispose()


def typed(ctl: Ctl, *args: str, input: str):  # type: ignore[no-untyped-def]
    """Run hotspotctl with what the operator types at its prompts."""
    from hotspotd.cli import cli

    return ctl.runner.invoke(
        cli, ["--config", str(ctl.config_file), *args], input=input, obj=ctl.clock
    )


def private_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text(text)
    path.chmod(mode)
    return path


def accounts(engine: Engine) -> dict[str, Operator]:
    with dbmod.make_sessionmaker(engine)() as s:
        return {o.username: o for o in s.scalars(select(Operator))}


def audit_text(engine: Engine) -> str:
    with dbmod.make_sessionmaker(engine)() as s:
        rows = s.scalars(select(AuditEvent)).all()
        return "\n".join(f"{e.actor} {e.action} {e.subject} {e.detail}" for e in rows)


def test_add_asks_twice_hidden_and_the_account_signs_in(ready: Ctl, database: Engine) -> None:
    result = ok(typed(ready, "operator", "add", "Siti", "--role", "admin", input=f"{PW}\n{PW}\n"))
    assert "Password again" in result.output
    assert "added operator siti (admin)" in result.stdout
    assert PW not in result.output
    with dbmod.make_sessionmaker(database)() as s:
        op, _ = operators.log_in(s, "siti", PW, address="10.66.0.5", now=NOW)
        assert op.role.value == "admin"
    assert "cli:pak_rt operator.add siti role admin" in audit_text(database)
    assert PW not in audit_text(database)


def test_a_mistyped_confirmation_asks_again(ready: Ctl, database: Engine) -> None:
    typing = f"{PW}\nsomething-else\n{PW}\n{PW}\n"
    result = ok(typed(ready, "operator", "add", "siti", "--role", "operator", input=typing))
    assert "do not match" in result.output
    assert password_matches(database, "siti", PW)


def password_matches(engine: Engine, name: str, password: str) -> bool:
    with dbmod.make_sessionmaker(engine)() as s:
        try:
            operators.log_in(s, name, password, address="10.66.0.5", now=NOW)
        except operators.LoginRefused:
            return False
        return True


def test_add_refuses_a_weak_password_in_one_line(ready: Ctl, database: Engine) -> None:
    result = typed(ready, "operator", "add", "siti", "--role", "admin", input="short\nshort\n")
    one_line_error(result, contains="at least 10 characters")
    assert accounts(database) == {}


def test_add_reads_a_private_password_file(ready: Ctl, database: Engine, tmp_path: Path) -> None:
    path = private_file(tmp_path, f"{PW}\nthe second line is ignored\n")
    result = ok(ready("operator", "add", "andi", "--role", "kominfo", "--password-file", str(path)))
    assert "Password" not in result.output and PW not in result.output
    assert password_matches(database, "andi", PW)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_password_file_others_may_read_or_change_is_refused(
    ready: Ctl, database: Engine, tmp_path: Path, mode: int
) -> None:
    path = private_file(tmp_path, f"{PW}\n", mode)
    result = ready("operator", "add", "andi", "--role", "admin", "--password-file", str(path))
    one_line_error(result, contains="chmod 600")
    assert PW not in result.output
    assert accounts(database) == {}


def test_an_empty_password_file_is_refused(ready: Ctl, tmp_path: Path) -> None:
    path = private_file(tmp_path, "\n")
    result = ready("operator", "add", "andi", "--role", "admin", "--password-file", str(path))
    one_line_error(result, contains="first line is empty")


def test_there_is_no_password_option(ready: Ctl) -> None:
    result = ready("operator", "add", "siti", "--role", "admin", "--password", PW)
    assert result.exit_code != 0 and "No such option" in result.output


def test_add_twice_and_bad_names_are_one_line(ready: Ctl, tmp_path: Path) -> None:
    path = private_file(tmp_path, PW)
    ok(ready("operator", "add", "siti", "--role", "admin", "--password-file", str(path)))
    again = ready("operator", "add", "SITI", "--role", "operator", "--password-file", str(path))
    one_line_error(again, contains="exists already")
    bad = ready("operator", "add", "bu siti", "--role", "operator", "--password-file", str(path))
    one_line_error(bad, contains="a username has 1 to 64")
    role = ready("operator", "add", "andi", "--role", "root", "--password-file", str(path))
    assert role.exit_code != 0 and "admin" in role.output


def test_passwd_changes_it_and_never_shows_it(ready: Ctl, database: Engine, tmp_path: Path) -> None:
    ok(ready("operator", "add", "siti", "--role", "admin", "--password-file",
             str(private_file(tmp_path, PW))))  # fmt: skip
    new = "teh-manis-sore-hari"
    result = ok(typed(ready, "operator", "passwd", "siti", input=f"{new}\n{new}\n"))
    assert "new password for siti" in result.stdout
    assert new not in result.output
    assert password_matches(database, "siti", new) and not password_matches(database, "siti", PW)
    assert "cli:pak_rt operator.passwd siti" in audit_text(database)
    assert new not in audit_text(database) and PW not in audit_text(database)
    unknown = typed(ready, "operator", "passwd", "nobody", input=f"{new}\n{new}\n")
    one_line_error(unknown, contains="no operator named 'nobody'")
    assert "Password" not in unknown.output  # told before being asked


def test_disable_enable_list_and_the_last_admin(
    ready: Ctl, database: Engine, tmp_path: Path
) -> None:
    path = str(private_file(tmp_path, PW))
    ok(ready("operator", "add", "siti", "--role", "admin", "--password-file", path))
    ok(ready("operator", "add", "andi", "--role", "operator", "--password-file", path))
    one_line_error(ready("operator", "disable", "siti"), contains="last enabled admin")
    assert "operator andi is disabled" in ok(ready("operator", "disable", "andi")).output
    listed = json.loads(ok(ready("operator", "list", "--json")).output)
    assert listed == [
        {
            "username": "andi",
            "role": "operator",
            "created_at": NOW.isoformat(),
            "disabled_at": NOW.isoformat(),
        },
        {"username": "siti", "role": "admin", "created_at": NOW.isoformat(), "disabled_at": None},
    ]
    table = ok(ready("operator", "list")).output
    assert table.splitlines()[0].split() == ["username", "role", "created", "disabled"]
    assert "andi" in table and "argon2" not in table
    assert "operator andi is enabled" in ok(ready("operator", "enable", "andi")).output
    assert accounts(database)["andi"].disabled_at is None
    one_line_error(ready("operator", "enable", "nobody"), contains="no operator named")


def test_list_when_there_are_none(ready: Ctl) -> None:
    assert "no operators yet" in ok(ready("operator", "list")).output
    assert json.loads(ok(ready("operator", "list", "--json")).output) == []


def test_the_certificate_fingerprint_is_the_one_openssl_gives(
    tmp_path: Path, config_file: Path
) -> None:
    import shutil
    import subprocess

    from tests.conftest import require

    require(shutil.which("openssl") is not None, "needs openssl")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=portal.lan", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)  # fmt: skip
    with config_file.open("a") as f:
        f.write(f'\n[operator]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    said = Ctl(config_file)("operator", "certificate")
    assert said.exit_code == 0, said.output
    openssl = subprocess.run(
        ["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert openssl.strip().split("=", 1)[1] in said.output
    assert "https://10.66.0.1:8444/" in said.output
