"""Restore: putting a backup in place of the database, config and media.

The whole archive is checked (`archive.unpack`) before anything is written. The previous
database is kept as `hotspot.db.before-restore` and the restored one written in a single SQLite
transaction (or, when there is none yet, a temporary file renamed into place), so a power cut
leaves either the old database or the new one, never half of each. It refuses to run while
hotspotd does (the daemon's lock file), since the daemon would write onto the restored data from
its old memory; a damaged live file is moved aside with its WAL, never without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine

from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.backup import snapshot
from hotspotd.backup.archive import MEDIA_NAME, BackupError, Manifest, sqlite_file, unpack
from hotspotd.instance import AlreadyRunning, hold_instance_lock

BEFORE_RESTORE = ".before-restore"


@dataclass
class RestoreReport:
    """What a restore did, one line each, for the operator."""

    manifest: Manifest
    database: Path
    done: list[str] = field(default_factory=list)


def restore(config: config_mod.Config, src_file: str | os.PathLike[str]) -> RestoreReport:
    """Put a backup in place of the database, config and media that `config` names.

    Everything is checked before anything is written. The old database stays beside the new one
    as `hotspot.db.before-restore`, the old config and media likewise.
    """
    src = Path(src_file)
    target = sqlite_file(config)
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
        unpacked = unpack(src, work)
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
                with snapshot.temp_path(target.parent, f".{before.name}.", mode=0o660) as partial:
                    snapshot.take(target, partial)
                    os.replace(partial, before)
            except snapshot.DatabaseBusy as exc:
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
        snapshot.fsync_dir(target.parent)
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
            contextlib.closing(
                sqlite3.connect(live_uri, uri=True, timeout=snapshot.BUSY_TIMEOUT_S)
            ) as dst,
            contextlib.closing(sqlite3.connect(restored)) as src,
        ):
            want = dst.execute("PRAGMA page_size").fetchone()[0]
            if src.execute("PRAGMA page_size").fetchone()[0] != want:
                # A WAL database only accepts a copy with its own page size.
                src.execute(f"PRAGMA page_size = {int(want)}")
                src.execute("VACUUM")
            src.backup(dst, progress=snapshot.bounded(live, snapshot.BUSY_TIMEOUT_S))
    except snapshot.DatabaseBusy as exc:
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
    with snapshot.temp_path(target.parent, f".{target.name}.", mode=mode) as partial:
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
    snapshot.fsync_dir(target.parent)


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
