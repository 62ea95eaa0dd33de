"""Backup and restore: consistent while running, refused when not ours, never half-written."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text

from hotspotd import backup as bk
from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.backup import snapshot
from hotspotd.cli import cli
from tests.conftest import NOW, Ctl


def ok(result):  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result, *, contains: str) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert contains in lines[0], result.output
    return lines[0]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"  # where the `db_url` fixture puts hotspot.db


@pytest.fixture
def config_path(config_file: Path, state_dir: Path) -> Path:
    """The shared config file, with its state directory (media) inside the test's folder."""
    with config_file.open("a") as f:
        f.write(
            f'\n[daemon]\nstate_dir = "{state_dir}"\n'
            f'control_socket = "{state_dir.parent / "run" / "control.sock"}"\n'
        )
    return config_file


@pytest.fixture
def hctl(ctl: Ctl, config_path: Path) -> Ctl:
    """hotspotctl with the config that puts the state directory in the test's folder."""
    return ctl


@pytest.fixture
def village(hctl: Ctl, engine: Engine) -> Iterator[list[str]]:
    """A migrated database with two plans and five vouchers; yields the codes."""
    ok(hctl("plan", "add", "Harian", "--price", "5000", "--time", "3h", "--data", "1GB"))
    ok(hctl("plan", "add", "Mingguan", "--price", "25.000", "--validity", "7d"))
    made = ok(hctl("voucher", "make", "--plan", "Harian", "--count", "5", "--json"))
    yield json.loads(made.stdout)


def _config(path: Path) -> config_mod.Config:
    return config_mod.load(path)


def _dump(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a comparable form."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    finally:
        conn.close()


def _fresh_config(tmp_path: Path, name: str = "new") -> Path:
    """Another router: its own state directory and config, nothing in them yet."""
    state = tmp_path / name / "state"
    path = tmp_path / name / "hotspot.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f'[village]\nname = "Router Baru"\n\n[database]\nurl = "sqlite:///{state / "hotspot.db"}"'
        f'\n\n[daemon]\nstate_dir = "{state}"\ncontrol_socket = "{state.parent / "run" / "s"}"\n'
    )
    return path


# ---------------------------------------------------------------- backup and restore


def test_backup_while_a_writer_holds_a_transaction_restores_identically(
    tmp_path: Path, config_path: Path, village: list[str], state_dir: Path
) -> None:
    live = state_dir / "hotspot.db"
    committed = _dump(live)
    writer = sqlite3.connect(live, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM voucher")  # not committed: must not be in the backup
    try:
        archive = tmp_path / "desa.tar.gz"
        manifest = bk.backup(_config(config_path), archive, now=NOW)
    finally:
        writer.rollback()
        writer.close()

    assert manifest.village == "Desa Uji"
    assert manifest.schema_revision == schema.head()
    assert manifest.created_at == NOW
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds every voucher code

    fresh = _fresh_config(tmp_path)
    report = bk.restore(_config(fresh), archive)
    restored = tmp_path / "new" / "state" / "hotspot.db"
    assert report.database == restored
    assert _dump(restored) == committed
    assert len(committed["voucher"]) == 5
    # The config came along (the fresh router's own is kept aside).
    assert fresh.read_text() == config_path.read_text()
    assert "Router Baru" in Path(f"{fresh}{bk.BEFORE_RESTORE}").read_text()
    assert any("names the database" in line for line in report.done)


def test_restore_over_a_live_database_keeps_the_previous_one(
    tmp_path: Path, hctl: Ctl, village: list[str], config_path: Path, state_dir: Path
) -> None:
    live = state_dir / "hotspot.db"
    archive = tmp_path / "before-sale.tar.gz"
    ok(hctl("backup", str(archive)))
    ok(hctl("plan", "add", "Bulanan", "--price", "80000"))  # made after the backup
    after_backup = _dump(live)
    os.chmod(live, 0o660)

    # The portal has the database open the whole time.
    portal = create_engine(f"sqlite:///{live}")
    with portal.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM plan")) == 3

        result = ok(hctl("restore", str(archive), "--yes"))
        assert "kept the previous database" in result.stdout
        assert "restart hotspotd" in result.stdout

        # The open connection sees the restored data: no stale file, no foreign WAL replayed.
        conn.rollback()
        assert conn.scalar(text("SELECT count(*) FROM plan")) == 2
    portal.dispose()

    before = state_dir / f"hotspot.db{bk.BEFORE_RESTORE}"
    assert _dump(before) == after_backup
    assert [r[1] for r in _dump(live)["plan"]] == ["Harian", "Mingguan"]
    assert stat.S_IMODE(live.stat().st_mode) == 0o660  # owner and mode kept for the portal
    ok(hctl("voucher", "check", village[0]))
    assert sqlite3.connect(live).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_media_and_config_go_and_come_back(
    tmp_path: Path, hctl: Ctl, village: list[str], config_path: Path, state_dir: Path
) -> None:
    media = state_dir / "media"
    (media / "pasar").mkdir(parents=True)
    (media / "pasar" / "keripik.jpg").write_bytes(b"\xff\xd8 keripik")
    (media / "belajar.pdf").write_bytes(b"%PDF lesson")
    archive = tmp_path / "all.tar.gz"
    result = ok(hctl("backup", str(archive)))
    assert "2 media files" in result.stdout and "config" in result.stdout

    original_config = config_path.read_text()
    (media / "pasar" / "keripik.jpg").unlink()
    (media / "baru.jpg").write_bytes(b"uploaded after")
    config_path.write_text(original_config.replace("Desa Uji", "Desa Diubah"))

    result = ok(hctl("restore", str(archive), "--yes"))
    assert "restored 2 media files" in result.stdout
    assert (media / "pasar" / "keripik.jpg").read_bytes() == b"\xff\xd8 keripik"
    assert (media / "belajar.pdf").read_bytes() == b"%PDF lesson"
    assert not (media / "baru.jpg").exists()
    assert (state_dir / "media.before-restore" / "baru.jpg").read_bytes() == b"uploaded after"
    assert stat.S_IMODE((media / "belajar.pdf").stat().st_mode) == 0o660  # the portal's too
    assert stat.S_IMODE((media / "pasar").stat().st_mode) == 0o2770
    assert config_path.read_text() == original_config
    assert "Desa Diubah" in Path(f"{config_path}{bk.BEFORE_RESTORE}").read_text()


def test_an_older_schema_is_upgraded_on_restore(tmp_path: Path, config_path: Path) -> None:
    revisions = [r.revision for r in ScriptDirectory(str(schema.MIGRATIONS)).walk_revisions()]
    if len(revisions) < 2:  # pragma: no cover - true once a second migration exists
        pytest.skip("only one schema revision so far")
    oldest = revisions[-1]
    cfg = _config(config_path)
    engine = create_engine(cfg.database.url)
    Path(cfg.database.url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    schema.upgrade(engine, oldest)
    engine.dispose()
    archive = tmp_path / "old.tar.gz"
    assert bk.backup(cfg, archive, now=NOW).schema_revision == oldest

    fresh = _fresh_config(tmp_path)
    report = bk.restore(_config(fresh), archive)
    assert any(f"from schema {oldest}" in line for line in report.done)
    restored = create_engine(f"sqlite:///{tmp_path / 'new' / 'state' / 'hotspot.db'}")
    assert schema.current(restored) == schema.head()
    restored.dispose()


def test_restore_replaces_a_damaged_live_database(
    tmp_path: Path, hctl: Ctl, village: list[str], state_dir: Path
) -> None:
    """A worn SD card is why a village restores: a damaged file is moved aside, not read."""
    archive = tmp_path / "a.tar.gz"
    ok(hctl("backup", str(archive)))
    live = state_dir / "hotspot.db"
    good = _dump(live)
    garbage = b"SQLite format 3\x00" + os.urandom(8192)
    live.write_bytes(garbage)
    journal = os.urandom(4096)
    (state_dir / "hotspot.db-wal").write_bytes(journal)  # its journal beside it

    result = ok(hctl("restore", str(archive), "--yes"))
    assert "damaged" in result.stdout
    assert _dump(live) == good
    assert (state_dir / f"hotspot.db{bk.BEFORE_RESTORE}").read_bytes() == garbage
    # the journal went aside with its file (it may hold the last sales), not onto ours
    assert (state_dir / f"hotspot.db{bk.BEFORE_RESTORE}-wal").read_bytes() == journal
    assert not (state_dir / "hotspot.db-wal").exists() or (
        (state_dir / "hotspot.db-wal").read_bytes() != journal
    )
    assert stat.S_IMODE(live.stat().st_mode) == 0o660


def test_backup_of_a_damaged_database_is_one_line(
    tmp_path: Path, hctl: Ctl, village: list[str], state_dir: Path
) -> None:
    for name in ("hotspot.db", "hotspot.db-wal", "hotspot.db-shm"):
        (state_dir / name).unlink(missing_ok=True)  # a new file, not the one still open
    (state_dir / "hotspot.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
    one_line_error(hctl("backup", str(tmp_path / "x.tar.gz")), contains="database")
    assert not (tmp_path / "x.tar.gz").exists()


def test_backup_refuses_to_overwrite_unless_forced(
    tmp_path: Path, hctl: Ctl, village: list[str]
) -> None:
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"something precious")
    one_line_error(hctl("backup", str(archive)), contains="exists")
    assert archive.read_bytes() == b"something precious"
    ok(hctl("backup", str(archive), "--force"))
    assert bk.read_manifest(archive).village == "Desa Uji"


def test_backup_without_a_database_says_so(tmp_path: Path, hctl: Ctl) -> None:
    one_line_error(hctl("backup", str(tmp_path / "x.tar.gz")), contains="no database at")
    assert not (tmp_path / "x.tar.gz").exists()


def test_restore_asks_first(tmp_path: Path, hctl: Ctl, village: list[str], state_dir: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    ok(hctl("backup", str(archive)))
    ok(hctl("plan", "add", "Bulanan", "--price", "80000"))
    before = _dump(state_dir / "hotspot.db")

    no = hctl.runner.invoke(
        cli, ["--config", str(hctl.config_file), "restore", str(archive)], input="n\n"
    )
    assert no.exit_code == 1 and "Desa Uji" in no.output
    assert _dump(state_dir / "hotspot.db") == before

    yes = hctl.runner.invoke(
        cli, ["--config", str(hctl.config_file), "restore", str(archive)], input="y\n"
    )
    assert yes.exit_code == 0, yes.output
    assert len(_dump(state_dir / "hotspot.db")["plan"]) == 2


def test_postgresql_is_refused_with_the_right_tool(tmp_path: Path, hctl: Ctl) -> None:
    pg = tmp_path / "pg.toml"
    pg.write_text('[database]\nurl = "postgresql+psycopg://hs@/hs?host=/tmp"\n')
    for args in (["backup", str(tmp_path / "x.tar.gz")], ["restore", "x.tar.gz", "--yes"]):
        result = hctl.runner.invoke(cli, ["--config", str(pg), *args])
        line = one_line_error(result, contains="pg_dump")
        assert "PostgreSQL" in line
    assert bk.nightly(_config(pg), NOW) is None  # the daemon's job skips quietly


# ---------------------------------------------------------------- refusals


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _pack(dest: Path, members: dict[str, bytes], *, rehash: bool = True) -> Path:
    """An archive with these members in this order; the manifest's hashes redone if asked."""
    if rehash and bk.MANIFEST_NAME in members:
        manifest = json.loads(members[bk.MANIFEST_NAME])
        manifest["files"] = {
            n: hashlib.sha256(b).hexdigest() for n, b in members.items() if n != bk.MANIFEST_NAME
        }
        members = {**members, bk.MANIFEST_NAME: json.dumps(manifest).encode()}
    with tarfile.open(dest, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def _with_manifest(members: dict[str, bytes], **changes: object) -> dict[str, bytes]:
    manifest = json.loads(members[bk.MANIFEST_NAME])
    manifest.update(changes)
    return {**members, bk.MANIFEST_NAME: json.dumps(manifest).encode()}


def _db_at_revision(db_bytes: bytes, tmp_path: Path, revision: str) -> bytes:
    path = tmp_path / "relabelled.db"
    path.write_bytes(db_bytes)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.commit()
    conn.close()
    return path.read_bytes()


def _bad_archives(good: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    members = _members(good)
    raw = good.read_bytes()
    tar_no_gzip = tmp / "plain.tar"
    with tarfile.open(tar_no_gzip, "w") as tar:
        info = tarfile.TarInfo("x")
        tar.addfile(info, io.BytesIO(b""))
    foreign = {"README.txt": b"holiday photos", **members}
    db_bytes = members[bk.DB_NAME]
    spoiled_db = db_bytes[:4096] + b"\x00" * 4096 + db_bytes[8192:]
    return {
        "random bytes": (_write(tmp / "random.tar.gz", os.urandom(999)), "not a .tar.gz"),
        "empty file": (_write(tmp / "empty.tar.gz", b""), "not a"),
        "a plain tar": (tar_no_gzip, "not a .tar.gz"),
        "cut short": (_write(tmp / "cut.tar.gz", raw[: len(raw) // 2]), "cut short"),
        "no manifest": (
            _pack(
                tmp / "foreign.tar.gz", {k: v for k, v in members.items() if k != "manifest.json"}
            ),
            "no manifest",
        ),
        "foreign first": (_pack(tmp / "foreign2.tar.gz", foreign, rehash=False), "no manifest"),
        "foreign format": (
            _pack(tmp / "fmt.tar.gz", _with_manifest(members, format="other")),
            "foreign manifest",
        ),
        "newer format": (
            _pack(tmp / "newer.tar.gz", _with_manifest(members, format_version=99)),
            "newer hotspot",
        ),
        "newer schema": (
            _pack(
                tmp / "schema.tar.gz",
                {
                    **_with_manifest(members, schema_revision="9999"),
                    bk.DB_NAME: _db_at_revision(db_bytes, tmp, "9999"),
                },
            ),
            "upgrade hotspot first",
        ),
        "database swapped": (
            _pack(tmp / "swapped.tar.gz", {**members, bk.DB_NAME: db_bytes + b"x"}, rehash=False),
            "does not match its manifest",
        ),
        "database damaged": (
            _pack(tmp / "damaged.tar.gz", {**members, bk.DB_NAME: spoiled_db}),
            "integrity check",
        ),
        "path escape": (
            _pack(tmp / "escape.tar.gz", {**members, "media/../../evil": b"x"}),
            "unexpected entry",
        ),
        "bad config": (
            _pack(tmp / "cfg.tar.gz", {**members, bk.CONFIG_NAME: b"[village]\ncolour = 1\n"}),
            "does not suit this hotspot",
        ),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CASES = [
    "random bytes",
    "empty file",
    "a plain tar",
    "cut short",
    "no manifest",
    "foreign first",
    "foreign format",
    "newer format",
    "newer schema",
    "database swapped",
    "database damaged",
    "path escape",
    "bad config",
]


@pytest.mark.parametrize("case", CASES)
def test_restore_refuses_what_is_not_a_good_backup(
    case: str, tmp_path: Path, hctl: Ctl, village: list[str], config_path: Path, state_dir: Path
) -> None:
    good = tmp_path / "good.tar.gz"
    ok(hctl("backup", str(good)))
    bad, why = _bad_archives(good, tmp_path)[case]
    live = state_dir / "hotspot.db"
    before, config_before = _dump(live), config_path.read_text()

    one_line_error(hctl("restore", str(bad), "--yes"), contains=why)

    assert _dump(live) == before
    assert config_path.read_text() == config_before
    assert not (state_dir / f"hotspot.db{bk.BEFORE_RESTORE}").exists()
    assert not (tmp_path.parent / "evil").exists()
    leftovers = [p.name for p in state_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_the_good_archive_in_those_cases_is_itself_accepted(
    tmp_path: Path, hctl: Ctl, village: list[str]
) -> None:
    """The cases above are refused for their flaw, not for how the test rebuilt them."""
    good = tmp_path / "good.tar.gz"
    ok(hctl("backup", str(good)))
    rebuilt = _pack(tmp_path / "rebuilt.tar.gz", _members(good))
    ok(hctl("restore", str(rebuilt), "--yes"))


def test_a_missing_file_is_one_line(hctl: Ctl, village: list[str], tmp_path: Path) -> None:
    one_line_error(hctl("restore", str(tmp_path / "nope.tar.gz"), "--yes"), contains="no such file")


# ---------------------------------------------------------------- nightly


def test_nightly_keeps_the_newest_seven(
    config_path: Path, village: list[str], state_dir: Path
) -> None:
    cfg = _config(config_path)
    folder = state_dir / bk.NIGHTLY_DIR
    folder.mkdir()
    (folder / "operator-copy.tar.gz").write_bytes(b"mine")  # not ours to rotate
    written = [bk.nightly(cfg, NOW + timedelta(days=d)) for d in range(9)]
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == sorted([*(p.name for p in written[2:] if p), "operator-copy.tar.gz"])
    assert bk.read_manifest(written[-1]).created_at == NOW + timedelta(days=8)  # type: ignore[arg-type]


def test_restore_refuses_while_hotspotd_runs(
    tmp_path: Path, hctl: Ctl, village: list[str], state_dir: Path, config_path: Path
) -> None:
    from hotspotd.instance import hold_instance_lock

    archive = tmp_path / "a.tar.gz"
    ok(hctl("backup", str(archive)))
    live = state_dir / "hotspot.db"
    before = _dump(live)
    running = hold_instance_lock(_config(config_path).daemon.lock_file)  # hotspotd is up
    try:
        one_line_error(hctl("restore", str(archive), "--yes"), contains="hotspotd is running")
    finally:
        running.close()
    assert _dump(live) == before
    assert not (state_dir / f"hotspot.db{bk.BEFORE_RESTORE}").exists()


def test_a_busy_database_is_waited_on_for_seconds_not_for_ever_and_loses_nothing(
    tmp_path: Path,
    hctl: Ctl,
    village: list[str],
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python's backup retries "busy" for ever; and a restore that took a failure for damage
    dropped the live WAL, with every sale that was only in it."""
    archive = tmp_path / "a.tar.gz"
    ok(hctl("backup", str(archive)))
    live = state_dir / "hotspot.db"
    # a sale committed after the backup, still only in the WAL
    writer = sqlite3.connect(live)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute(
        "INSERT INTO audit_event (at, actor, action, subject, detail) "
        "VALUES ('2026-11-23 03:00:00', 'resident', 'voucher.redeem', 'SALE-IN-WAL', '')"
    )
    writer.commit()
    writer.close()
    assert (state_dir / "hotspot.db-wal").stat().st_size > 0
    monkeypatch.setattr(snapshot, "BUSY_TIMEOUT_S", 0.5)
    holder = sqlite3.connect(live)  # another program in the middle of a long write
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        one_line_error(hctl("restore", str(archive), "--yes"), contains="busy")
        assert time.monotonic() - started < 30
    finally:
        holder.rollback()
        holder.close()
    check = sqlite3.connect(live)
    try:
        subjects = [r[0] for r in check.execute("SELECT subject FROM audit_event")]
    finally:
        check.close()
    assert "SALE-IN-WAL" in subjects  # the live database is as it was


def test_a_snapshot_of_a_locked_database_gives_up_after_its_wait(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.execute("BEGIN EXCLUSIVE")  # a rollback-journal database: readers wait too
    try:
        started = time.monotonic()
        with pytest.raises(bk.DatabaseBusy, match="busy"):
            snapshot.take(path, tmp_path / "copy.db", wait_s=0.3)
        assert time.monotonic() - started < 10
    finally:
        conn.rollback()
        conn.close()


def test_the_backup_package_needs_no_command_line() -> None:
    """hotspotd (the nightly job) imports it; hotspotctl imports it, never the other way."""
    probe = (
        "import sys, hotspotd.backup; "
        "print([m for m in sys.modules if m.startswith('hotspotd.cli')])"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"
