"""The backup archive: what one holds, and how one is read and checked before it is trusted.

One `.tar.gz`: `manifest.json` first (format, schema revision, time, village, a SHA-256 per
file), then the SQLite database, the config file and uploaded media. Reading refuses what is
not ours, what comes from a newer format or schema, and any file that differs from its hash or
fails SQLite's own integrity check. Writing one is `snapshot.py`'s part.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sqlite3
import tarfile
import tomllib
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from hotspotd import config as config_mod
from hotspotd import schema
from hotspotd.core import db
from hotspotd.errors import ConfigError, HotspotError

FORMAT = "hotspot-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DB_NAME = "hotspot.db"
CONFIG_NAME = "hotspot.toml"
MEDIA_NAME = "media"
CHUNK = 1 << 16  # bytes read at a time when hashing
_MANIFEST_MAX = 1 << 20
_CUT_SHORT = "damaged backup (the archive is cut short or corrupt)"


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


# ---------------------------------------------------------------- checks


def sqlite_file(config: config_mod.Config) -> Path:
    """The SQLite file `config` names; other databases are refused with what to use instead."""
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


def hotspot_version() -> str:
    """The installed hotspot's version, as written in a manifest."""
    try:
        return metadata.version("hotspot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _known_revisions() -> set[str]:
    return {rev.revision for rev in ScriptDirectory(str(schema.MIGRATIONS)).walk_revisions()}


def revision_of(path: Path) -> str | None:
    """The schema revision of the SQLite file at `path` (None: no schema)."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        return schema.current(engine)
    finally:
        engine.dispose()


def integrity_ok(conn: sqlite3.Connection) -> bool:
    """SQLite's own integrity check; a file too damaged to run it fails it."""
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError:
        return False
    return rows == [("ok",)]


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
            f"({hotspot_version()}, up to {schema.head()}) does not know: it comes from a newer "
            "version; upgrade hotspot first"
        )


@dataclass
class Unpacked:
    """An archive extracted into a work folder, every file checked."""

    manifest: Manifest
    database: Path
    config_text: str | None
    media: Path | None


def unpack(src: Path, work: Path) -> Unpacked:
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
                    while chunk := stream.read(CHUNK):
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
        if not integrity_ok(conn):
            raise BackupError(f"{where}: damaged backup (the database fails its integrity check)")
    finally:
        conn.close()
    found = revision_of(database)
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
    return Unpacked(manifest, database, config_text, media if media.is_dir() else None)
