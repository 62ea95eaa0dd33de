"""Making a backup while hotspotd and the portal keep running.

The database is copied with SQLite's online backup API in one step, which reads one committed
snapshot; a database kept busy by another program is waited on for a few seconds, not for ever.
The archive is written to a temporary file and renamed into place, so it appears complete or not
at all. The file helpers here (`temp_path`, `fsync_dir`) serve restore too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from hotspotd import config as config_mod
from hotspotd.backup.archive import (
    CHUNK,
    CONFIG_NAME,
    DB_NAME,
    MANIFEST_NAME,
    MEDIA_NAME,
    BackupError,
    Manifest,
    hotspot_version,
    integrity_ok,
    revision_of,
    sqlite_file,
)
from hotspotd.core import db
from hotspotd.errors import DatabaseNotReady, HotspotError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = db.BUSY_TIMEOUT_MS / 1000


class DatabaseBusy(HotspotError):
    """Another process holds the database longer than a backup waits."""


# ---------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Makes a rename in `path` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def bounded(what: Path, wait_s: float) -> Callable[[int, int, int], None]:
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


def take(source: Path, dest: Path, wait_s: float | None = None) -> None:
    """A consistent, self-contained copy of a live SQLite file (no -wal beside it).

    Raises DatabaseBusy when the file stays locked, BackupError when it cannot be read.
    """
    wait_s = BUSY_TIMEOUT_S if wait_s is None else wait_s
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=wait_s)
        try:
            out = sqlite3.connect(dest)
            try:
                # pages=-1: one step, one read transaction, one snapshot
                src.backup(out, progress=bounded(source, wait_s))
                out.execute("PRAGMA journal_mode = DELETE")
                intact = integrity_ok(out)
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
def temp_path(directory: Path, prefix: str, mode: int = 0o600) -> Iterator[Path]:
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
    source = sqlite_file(config)
    if not source.exists():
        raise DatabaseNotReady(f"no database at {source}: nothing to back up")
    if dest.exists() and not overwrite:
        raise BackupError(f"{dest} exists: choose another name or remove it first")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent}: no such folder")

    with tempfile.TemporaryDirectory(prefix=".hotspot-backup-", dir=dest.parent) as work_dir:
        work = Path(work_dir)
        db_copy = work / DB_NAME
        take(source, db_copy)
        revision = revision_of(db_copy)
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
            hotspot_version=hotspot_version(),
            files=files,
        )
        raw = manifest.to_json()
        with temp_path(dest.parent, f".{dest.name}.") as partial:
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
        fsync_dir(dest.parent)
    return manifest
