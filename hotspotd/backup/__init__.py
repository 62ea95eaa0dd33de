"""Backup and restore: everything a village needs to move to a new SD card or a new router.

One `.tar.gz`: `manifest.json` first (format, schema revision, time, village, a SHA-256 per
file), then the SQLite database, the config file and uploaded media (`media/` in the state
directory). The database is copied with SQLite's online backup API in one step, which reads one
committed snapshot, so hotspotd and the portal keep running while it is taken.

Restore checks the whole archive (ours, not from a newer format or schema, every file's hash,
SQLite's own integrity check) before it writes anything. It keeps the previous database as
`hotspot.db.before-restore` and writes the restored one in a single SQLite transaction (or, when
there is none yet, a temporary file renamed into place), so a power cut leaves either the old
database or the new one, never half of each. It refuses to run while hotspotd does (the
daemon's lock file), since the daemon would write onto the restored data from its old memory;
a damaged live file is moved aside with its WAL, never without it; and a database kept busy
by another program is waited on for a few seconds, not for ever.

PostgreSQL is refused: `pg_dump` is the tool there.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time
import tomllib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import click
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.core import db
from hotspotd.errors import ConfigError, DatabaseNotReady, HotspotError
from hotspotd.instance import AlreadyRunning, hold_instance_lock

if TYPE_CHECKING:
    from hotspotd.cli import Env

log = logging.getLogger(__name__)

FORMAT = "hotspot-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DB_NAME = "hotspot.db"
CONFIG_NAME = "hotspot.toml"
MEDIA_NAME = "media"
BEFORE_RESTORE = ".before-restore"
NIGHTLY_DIR = "backups"
NIGHTLY_KEEP = 7
_NIGHTLY_NAME = re.compile(r"^hotspot-\d{8}-\d{6}\.tar\.gz$")
_MANIFEST_MAX = 1 << 20
_CHUNK = 1 << 16
_CUT_SHORT = "damaged backup (the archive is cut short or corrupt)"
_BUSY_TIMEOUT_S = db.BUSY_TIMEOUT_MS / 1000


class DatabaseBusy(HotspotError):
    """Another process holds the database longer than a backup waits."""


class BackupError(HotspotError):
    """A backup cannot be made or restored; the message says why and what to do instead."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds; written first in the archive so a foreign file is refused early."""

    schema_revision: str
    created_at: datetime
    village: str
    hotspot_version: str
    files: dict[str, str]  # member name -> SHA-256 of its content
    format_version: int = FORMAT_VERSION

    @property
    def has_config(self) -> bool:
        return CONFIG_NAME in self.files

    @property
    def media_files(self) -> int:
        return sum(1 for name in self.files if name.startswith(MEDIA_NAME + "/"))

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": self.format_version,
                "schema_revision": self.schema_revision,
                "created_at": self.created_at.isoformat(),
                "village": self.village,
                "hotspot_version": self.hotspot_version,
                "files": self.files,
            },
            ensure_ascii=False,
            indent=2,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BackupError(f"{where}: not a hotspot backup (unreadable manifest)") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupError(f"{where}: not a hotspot backup (foreign manifest)")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise BackupError(f"{where}: damaged backup (no format version in the manifest)")
        if version > FORMAT_VERSION:
            raise BackupError(
                f"{where}: made by a newer hotspot (backup format {version}; this one reads up "
                f"to {FORMAT_VERSION}): upgrade hotspot first"
            )
        try:
            files = data["files"]
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()
            ):
                raise TypeError("files")
            created = datetime.fromisoformat(str(data["created_at"]))
            return cls(
                schema_revision=str(data["schema_revision"]),
                created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
                village=str(data.get("village", "")),
                hotspot_version=str(data.get("hotspot_version", "")),
                files=files,
                format_version=version,
            )
        except (KeyError, TypeError, ValueError):
            raise BackupError(f"{where}: damaged backup (incomplete manifest)") from None


@dataclass
class RestoreReport:
    """What a restore did, one line each, for the operator."""

    manifest: Manifest
    database: Path
    done: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- helpers


def _sqlite_file(config: config_mod.Config) -> Path:
    url = config.database.url
    path = db.sqlite_path(url)
    if path is None:
        if url.startswith("postgresql"):
            raise BackupError(
                "the database is PostgreSQL: back it up with pg_dump (and restore with "
                "pg_restore); `hotspotctl backup` handles SQLite only"
            )
        raise BackupError(f"cannot back up an in-memory database ({url})")
    return path


def _version() -> str:
    try:
        return metadata.version("hotspot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory(str(schema.MIGRATIONS)).walk_revisions()}


def _revision_of(path: Path) -> str | None:
    engine = create_engine(f"sqlite:///{path}")
    try:
        return schema.current(engine)
    finally:
        engine.dispose()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _integrity_ok(conn: sqlite3.Connection) -> bool:
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError:
        return False
    return rows == [("ok",)]


_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def _bounded(what: Path, wait_s: float) -> Callable[[int, int, int], None]:
    """A progress callback for `Connection.backup` that gives up on a database kept busy.

    Python's backup retries "busy" and "locked" for ever; raising from the callback ends it.
    """
    deadline = time.monotonic() + wait_s

    def progress(status: int, _remaining: int, _total: int) -> None:
        if status in (_SQLITE_BUSY, _SQLITE_LOCKED) and time.monotonic() > deadline:
            raise DatabaseBusy(
                f"{what}: the database stayed busy for {wait_s:.0f} s (another program "
                "holds it); try again, or stop hotspotd first"
            )

    return progress


def _snapshot(source: Path, dest: Path, wait_s: float | None = None) -> None:
    """A consistent, self-contained copy of a live SQLite file (no -wal beside it).

    Raises DatabaseBusy when the file stays locked, BackupError when it cannot be read.
    """
    wait_s = _BUSY_TIMEOUT_S if wait_s is None else wait_s
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=wait_s)
        try:
            out = sqlite3.connect(dest)
            try:
                # pages=-1: one step, one read transaction, one snapshot
                src.backup(out, progress=_bounded(source, wait_s))
                out.execute("PRAGMA journal_mode = DELETE")
                intact = _integrity_ok(out)
            finally:
                out.close()
        finally:
            src.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseBusy(f"{source}: the database is busy: {exc}") from None
        raise BackupError(f"{source}: cannot read the database: {exc}") from None
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: cannot read the database: {exc}") from None
    if not intact:
        raise BackupError(f"{source}: the database fails SQLite's integrity check")


@contextlib.contextmanager
def _temp_path(directory: Path, prefix: str, mode: int = 0o600) -> Iterator[Path]:
    """A new file in `directory` (same file system, so it can be renamed into place)."""
    fd, name = tempfile.mkstemp(prefix=prefix, dir=directory)
    os.close(fd)
    path = Path(name)
    os.chmod(path, mode)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _tarinfo(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Files in the archive belong to nobody in particular: the new router decides."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o750 if info.isdir() else 0o640
    return info


# ---------------------------------------------------------------- backup


def backup(
    config: config_mod.Config,
    dest_file: str | os.PathLike[str],
    *,
    now: datetime,
    overwrite: bool = False,
) -> Manifest:
    """Write one archive of database, config and media to `dest_file`, while all keep running.

    The archive appears complete or not at all (temporary file, then rename), mode 0600: it holds
    every voucher code.
    """
    dest = Path(dest_file)
    source = _sqlite_file(config)
    if not source.exists():
        raise DatabaseNotReady(f"no database at {source}: nothing to back up")
    if dest.exists() and not overwrite:
        raise BackupError(f"{dest} exists: choose another name or remove it first")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent}: no such folder")

    with tempfile.TemporaryDirectory(prefix=".hotspot-backup-", dir=dest.parent) as work_dir:
        work = Path(work_dir)
        db_copy = work / DB_NAME
        _snapshot(source, db_copy)
        revision = _revision_of(db_copy)
        if revision is None:
            raise DatabaseNotReady(f"{source} has no schema: run `hotspotctl db upgrade`")
        files = {DB_NAME: _sha256(db_copy)}

        config_copy: Path | None = None
        if config.source != config_mod.Config.source:
            config_copy = work / CONFIG_NAME
            shutil.copyfile(config.source, config_copy)
            files[CONFIG_NAME] = _sha256(config_copy)

        media = config.daemon.state_dir / MEDIA_NAME
        media_copy = work / MEDIA_NAME
        media_members: list[str] = []
        if media.is_dir():
            # A copy, so a file uploaded meanwhile cannot differ from its hash.
            shutil.copytree(media, media_copy, symlinks=True)
            for path in sorted(media_copy.rglob("*")):
                name = path.relative_to(work).as_posix()
                if path.is_symlink():
                    log.warning("backup: skipped the symbolic link %s", name)
                    continue
                media_members.append(name)
                if path.is_file():
                    files[name] = _sha256(path)

        manifest = Manifest(
            schema_revision=revision,
            created_at=now,
            village=config.village.name,
            hotspot_version=_version(),
            files=files,
        )
        raw = manifest.to_json()
        with _temp_path(dest.parent, f".{dest.name}.") as partial:
            with partial.open("wb") as out:
                with tarfile.open(fileobj=out, mode="w:gz") as tar:
                    info = tarfile.TarInfo(MANIFEST_NAME)
                    info.size, info.mtime, info.mode = len(raw), int(now.timestamp()), 0o640
                    tar.addfile(info, io.BytesIO(raw))
                    tar.add(db_copy, DB_NAME, filter=_tarinfo)
                    if config_copy is not None:
                        tar.add(config_copy, CONFIG_NAME, filter=_tarinfo)
                    if media_members:
                        tar.add(media_copy, MEDIA_NAME, recursive=False, filter=_tarinfo)
                    for name in media_members:
                        tar.add(work / name, name, recursive=False, filter=_tarinfo)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, dest)
        _fsync_dir(dest.parent)
    return manifest


def nightly(config: config_mod.Config, now: datetime, keep: int = NIGHTLY_KEEP) -> Path | None:
    """hotspotd's nightly job: a backup in `<state_dir>/backups/`, keeping the newest `keep`."""
    if db.sqlite_path(config.database.url) is None:
        log.info("nightly backup skipped: the database is not SQLite (use pg_dump)")
        return None
    folder = config.daemon.state_dir / NIGHTLY_DIR
    folder.mkdir(mode=0o2770, parents=True, exist_ok=True)
    dest = folder / f"hotspot-{now.astimezone(UTC):%Y%m%d-%H%M%S}.tar.gz"
    backup(config, dest, now=now, overwrite=True)
    ours = sorted(p for p in folder.iterdir() if _NIGHTLY_NAME.match(p.name))
    for old in ours[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    log.info("nightly backup written to %s", dest)
    return dest


# ---------------------------------------------------------------- reading an archive


def _open(src: Path) -> tarfile.TarFile:
    if not src.is_file():
        raise BackupError(f"{src}: no such file")
    try:
        return tarfile.open(src, mode="r:gz")
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error):
        raise BackupError(f"{src}: not a hotspot backup (not a .tar.gz archive)") from None


def _member_name(member: tarfile.TarInfo, where: str) -> str:
    """The member's name if it is one a backup may hold; anything else is refused."""
    name = member.name
    parts = PurePosixPath(name).parts
    safe = (
        bool(parts)
        and not name.startswith("/")
        and all(p not in ("", ".", "..") for p in parts)
        and "\\" not in name
    )
    if safe and member.isfile() and name in (MANIFEST_NAME, DB_NAME, CONFIG_NAME):
        return name
    if safe and parts[0] == MEDIA_NAME and (member.isfile() or member.isdir()):
        return name
    raise BackupError(f"{where}: not a hotspot backup (unexpected entry {name!r})")


def read_manifest(src_file: str | os.PathLike[str]) -> Manifest:
    """The manifest of a backup, checked against this code; the rest is checked by restore."""
    src = Path(src_file)
    try:
        with _open(src) as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST_NAME or not first.isfile():
                raise BackupError(f"{src}: not a hotspot backup (no manifest)")
            manifest = _manifest_from(tar, first, str(src))
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile):
        raise BackupError(f"{src}: {_CUT_SHORT}") from None
    _check_revision(manifest.schema_revision, str(src))
    return manifest


def _manifest_from(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> Manifest:
    if member.size > _MANIFEST_MAX:
        raise BackupError(f"{where}: not a hotspot backup (manifest too large)")
    stream = tar.extractfile(member)
    assert stream is not None  # a regular file
    return Manifest.from_json(stream.read(), where)


def _check_revision(revision: str, where: str) -> None:
    if revision not in _known_revisions():
        raise BackupError(
            f"{where}: its database is at schema revision {revision}, which this hotspot "
            f"({_version()}, up to {schema.head()}) does not know: it comes from a newer "
            "version; upgrade hotspot first"
        )


@dataclass
class _Unpacked:
    manifest: Manifest
    database: Path
    config_text: str | None
    media: Path | None


def _unpack(src: Path, work: Path) -> _Unpacked:
    """Extracts into `work` and checks every file against the manifest and this code."""
    where = str(src)
    seen: dict[str, str] = {}
    manifest: Manifest | None = None
    try:
        with _open(src) as tar:
            for member in tar:
                name = _member_name(member, where)
                if manifest is None:
                    if name != MANIFEST_NAME:
                        raise BackupError(f"{where}: not a hotspot backup (no manifest)")
                    manifest = _manifest_from(tar, member, where)
                    _check_revision(manifest.schema_revision, where)
                    continue
                if name == MANIFEST_NAME or name in seen:
                    raise BackupError(f"{where}: damaged backup ({name} appears twice)")
                target = work.joinpath(*PurePosixPath(name).parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    seen[name] = ""
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                stream = tar.extractfile(member)
                assert stream is not None
                digest = hashlib.sha256()
                with target.open("wb") as out:
                    while chunk := stream.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                seen[name] = digest.hexdigest()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile):
        raise BackupError(
            f"{where}: damaged backup (the archive is cut short or corrupt)"
        ) from None
    if manifest is None:
        raise BackupError(f"{where}: not a hotspot backup (no manifest)")

    files = {name: digest for name, digest in seen.items() if digest}
    if files != manifest.files:
        bad = sorted(set(files.items()) ^ set(manifest.files.items()))
        raise BackupError(f"{where}: damaged backup ({bad[0][0]} does not match its manifest)")
    if DB_NAME not in files:
        raise BackupError(f"{where}: damaged backup (no database)")

    database = work / DB_NAME
    conn = sqlite3.connect(database)
    try:
        if not _integrity_ok(conn):
            raise BackupError(f"{where}: damaged backup (the database fails its integrity check)")
    finally:
        conn.close()
    found = _revision_of(database)
    if found != manifest.schema_revision:
        raise BackupError(f"{where}: damaged backup (database at {found}, manifest says otherwise)")

    config_text: str | None = None
    if CONFIG_NAME in files:
        try:
            config_text = (work / CONFIG_NAME).read_text("utf-8")
            config_mod.parse(tomllib.loads(config_text), f"{where}:{CONFIG_NAME}")
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            raise BackupError(f"{where}: damaged backup (its config is not TOML)") from None
        except ConfigError as exc:
            raise BackupError(f"its config does not suit this hotspot: {exc}") from None
    media = work / MEDIA_NAME
    return _Unpacked(manifest, database, config_text, media if media.is_dir() else None)


# ---------------------------------------------------------------- restore


def restore(config: config_mod.Config, src_file: str | os.PathLike[str]) -> RestoreReport:
    """Put a backup in place of the database, config and media that `config` names.

    Everything is checked before anything is written. The old database stays beside the new one
    as `hotspot.db.before-restore`, the old config and media likewise.
    """
    src = Path(src_file)
    target = _sqlite_file(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Never under a running hotspotd: it would go on from its old memory and write onto the
    # restored data. Holding its lock also keeps it from starting half-way.
    try:
        daemon_lock = hold_instance_lock(config.daemon.lock_file)
    except AlreadyRunning:
        raise BackupError(
            "hotspotd is running: stop it first (systemctl stop hotspotd), restore, then "
            "start it again"
        ) from None
    with daemon_lock:
        return _restore(config, src, target)


def _restore(config: config_mod.Config, src: Path, target: Path) -> RestoreReport:
    with tempfile.TemporaryDirectory(prefix=".hotspot-restore-", dir=target.parent) as work_dir:
        work = Path(work_dir)
        unpacked = _unpack(src, work)
        report = RestoreReport(unpacked.manifest, target)

        # An older schema is brought up to this code's before it goes live, so hotspotd starts.
        if unpacked.manifest.schema_revision != schema.head():
            engine = create_engine(f"sqlite:///{unpacked.database}")
            try:
                schema.upgrade(engine)
            finally:
                engine.dispose()
            report.done.append(
                f"upgraded the restored database from schema {unpacked.manifest.schema_revision}"
                f" to {schema.head()}"
            )

        before = target.with_name(target.name + BEFORE_RESTORE)
        installed = False
        if target.exists():
            try:
                with _temp_path(target.parent, f".{before.name}.", mode=0o660) as partial:
                    _snapshot(target, partial)
                    os.replace(partial, before)
            except DatabaseBusy as exc:
                raise BackupError(f"{exc}; nothing was restored") from None
            except BackupError:
                # The live file is damaged (a worn SD card): the very case restore is for.
                # Move it aside whole, with its journal files, so whatever they still hold
                # (a sale only in the WAL) is kept, and put the restored file in its place.
                for suffix in ("", "-wal", "-shm", "-journal"):
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(
                            target.with_name(target.name + suffix),
                            before.with_name(before.name + suffix),
                        )
                report.done.append(
                    f"the previous database is damaged; moved it (and its journal) to {before}"
                )
            else:
                report.done.append(f"kept the previous database as {before}")
                _copy_into_live(unpacked.database, target)
                installed = True
        if not installed:
            _rename_into_place(unpacked.database, target)
        _fsync_dir(target.parent)
        report.done.append(f"restored the database {target}")

        if unpacked.config_text is not None:
            report.done.extend(_restore_config(config, unpacked.config_text))
        if unpacked.media is not None:
            report.done.extend(_restore_media(config, unpacked.media))
    return report


def _rename_into_place(restored: Path, target: Path) -> None:
    """For when there is no usable live database: a whole file, renamed in at once."""
    for stale in ("-wal", "-shm", "-journal"):
        # A journal left beside a missing or damaged file must not be replayed onto ours.
        target.with_name(target.name + stale).unlink(missing_ok=True)
    _give_group_of_folder(restored, target.parent)
    os.chmod(restored, 0o660)
    with restored.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(restored, target)


def _copy_into_live(restored: Path, live: Path) -> None:
    """Writes the restored database over the live one in one SQLite transaction.

    Through SQLite rather than a rename: a process that has the file open (the portal, a
    running hotspotd) then sees the new data instead of keeping a deleted file, the live
    file's WAL can never be replayed onto the wrong database, and a crash half-way rolls back.
    The file keeps its owner and mode (root:hotspot 0660).
    """
    live_uri = f"{live.resolve().as_uri()}?mode=rw"
    try:
        with (
            contextlib.closing(sqlite3.connect(live_uri, uri=True, timeout=_BUSY_TIMEOUT_S)) as dst,
            contextlib.closing(sqlite3.connect(restored)) as src,
        ):
            want = dst.execute("PRAGMA page_size").fetchone()[0]
            if src.execute("PRAGMA page_size").fetchone()[0] != want:
                # A WAL database only accepts a copy with its own page size.
                src.execute(f"PRAGMA page_size = {int(want)}")
                src.execute("VACUUM")
            src.backup(dst, progress=_bounded(live, _BUSY_TIMEOUT_S))
    except DatabaseBusy as exc:
        raise BackupError(f"{exc}; nothing was restored") from None
    except sqlite3.Error as exc:
        raise BackupError(f"{live}: could not write the restored data: {exc}") from None


def _give_group_of_folder(path: Path, folder: Path) -> None:
    """Like a file made in the setgid state folder: group hotspot, so the portal can write it."""
    gid = folder.stat().st_gid
    if path.stat().st_gid != gid:
        with contextlib.suppress(PermissionError):
            os.chown(path, -1, gid)


def _replace_keeping_before(target: Path, content: bytes, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _temp_path(target.parent, f".{target.name}.", mode=mode) as partial:
        partial.write_bytes(content)
        if target.exists():
            st = target.stat()
            os.chmod(partial, st.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.chown(partial, st.st_uid, st.st_gid)
            shutil.copy2(target, target.with_name(target.name + BEFORE_RESTORE))
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
    _fsync_dir(target.parent)


def _restore_config(config: config_mod.Config, text: str) -> list[str]:
    path = Path(config.source) if config.source != config_mod.Config.source else None
    path = path or config_mod.DEFAULT_PATH
    new = text.encode("utf-8")
    if path.exists() and path.read_bytes() == new:
        return [f"the config {path} was already the same"]
    had = path.exists()
    _replace_keeping_before(path, new, 0o640)
    done = [f"restored the config {path}"]
    if had:
        done.append(f"kept the previous config as {path}{BEFORE_RESTORE}")
    restored_url = config_mod.parse(tomllib.loads(text), str(path)).database.url
    if restored_url != config.database.url:
        done.append(
            f"note: the restored config names the database {restored_url}, but the data went "
            f"to {config.database.url}: move it or edit the config"
        )
    return done


def _restore_media(config: config_mod.Config, unpacked: Path) -> list[str]:
    media = config.daemon.state_dir / MEDIA_NAME
    media.parent.mkdir(parents=True, exist_ok=True)
    staged = media.with_name(f".{MEDIA_NAME}.restore")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(unpacked, staged)
    # Like everything in the state folder: the portal (group hotspot) manages uploads too.
    for path in [staged, *staged.rglob("*")]:
        os.chmod(path, 0o2770 if path.is_dir() else 0o660)
        _give_group_of_folder(path, media.parent)
    done = []
    if media.exists():
        before = media.with_name(MEDIA_NAME + BEFORE_RESTORE)
        shutil.rmtree(before, ignore_errors=True)
        os.replace(media, before)
        done.append(f"kept the previous media as {before}")
    os.replace(staged, media)
    count = sum(1 for p in media.rglob("*") if p.is_file())
    return [f"restored {count} media files into {media}", *done]


# ---------------------------------------------------------------- hotspotctl commands


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover - the loop always returns


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.pass_obj
def backup_command(env: Env, file: Path, force: bool) -> None:
    """Save the database, the config and uploaded media to FILE (.tar.gz).

    Safe while hotspotd and the portal run: the database is copied as one consistent snapshot.
    FILE holds every voucher code: it is made readable by its owner only.
    """
    manifest = backup(env.config, file, now=env.now(), overwrite=force)
    parts = [f"schema {manifest.schema_revision}"]
    parts.append("config" if manifest.has_config else "no config file")
    parts.append(f"{manifest.media_files} media files")
    click.echo(f"backed up {manifest.village} to {file} ({', '.join(parts)}; {_size(file)})")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the database.")
@click.pass_obj
def restore_command(env: Env, file: Path, yes: bool) -> None:
    """Put the backup FILE in place of the database, config and media.

    The previous database is kept as hotspot.db.before-restore. Restart hotspotd and the portal
    afterwards.
    """
    target = _sqlite_file(env.config)
    manifest = read_manifest(file)
    if not yes:
        when = manifest.created_at.astimezone(env.config.village.tz)
        click.confirm(
            f"Replace {target} with the backup of {manifest.village} from "
            f"{when:%Y-%m-%d %H:%M %Z}?",
            abort=True,
        )
    report = restore(env.config, file)
    for line in report.done:
        click.echo(line)
    click.echo(
        "now restart hotspotd and the portal, so they work from the restored data: "
        "systemctl restart hotspotd hotspot-portal"
    )
