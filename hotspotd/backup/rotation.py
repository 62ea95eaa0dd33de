"""hotspotd's backups in the state folder: the nightly one, one made on the admin's asking, which
of the older ones are kept, and the list the operator's UI shows.

A backup holds every voucher code and the operator accounts' password hashes. The folder and its
files are root's, readable only by the group of the operator UI's own user (`hotspot-operator`),
so the admin can download them there; never by the residents' portal (user and group `hotspot`,
which every phone reaches). Without such a user the folder is root's alone. The folder is
setgid to that group (scripts/install makes it so), so a new file is the group's without the
CAP_CHOWN that hotspotd does not hold; it is made 0640 once complete.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hotspotd import config as config_mod
from hotspotd.backup.snapshot import backup
from hotspotd.core import db

log = logging.getLogger(__name__)

NIGHTLY_DIR = "backups"
NIGHTLY_KEEP = 7
ON_DEMAND_KEEP = 5  # "back up now" keeps its own few, so pressing it never pushes a nightly out
_NAMES = {
    "nightly": re.compile(r"^hotspot-(\d{8}-\d{6})\.tar\.gz$"),
    "on_demand": re.compile(r"^manual-(\d{8}-\d{6})\.tar\.gz$"),
}
_PREFIX = {"nightly": "hotspot", "on_demand": "manual"}


@dataclass(frozen=True)
class Kept:
    """One backup in the folder, as the operator's UI lists it."""

    name: str
    kind: str  # "nightly" or "on_demand"
    made_at: datetime  # UTC, from the name
    size: int
    path: Path


def folder_of(config: config_mod.Config) -> Path:
    return config.daemon.state_dir / NIGHTLY_DIR


def reader_group(config: config_mod.Config) -> int | None:
    """The group that may read the backups: the operator UI user's own. None (root only) when
    there is no such user, or when its group would let the residents' portal read them too."""
    user = config.daemon.operator_user
    if user is None:
        return None
    try:
        gid = pwd.getpwnam(user).pw_gid
    except KeyError:
        return None
    with contextlib.suppress(KeyError):
        portal = pwd.getpwnam(config_mod.PORTAL_USER)
        group = grp.getgrgid(gid)
        if portal.pw_gid == gid or config_mod.PORTAL_USER in group.gr_mem:
            log.warning("backups stay root's: group %s of %s includes the portal's user %s",
                        group.gr_name, user, config_mod.PORTAL_USER)  # fmt: skip
            return None
    return gid


def _prepare(folder: Path, gid: int | None) -> int | None:
    """The folder ready, setgid to `gid` so what is written there is the group's at once; the
    group it got (None: root's alone). scripts/install gives it its group; hotspotd has no
    CAP_CHOWN, so where that was not done it keeps the backups to root rather than fail."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if gid is not None and folder.stat().st_gid != gid:
        try:
            os.chown(folder, -1, gid)
        except PermissionError:
            log.warning("%s: cannot give it to group %d (run scripts/install); the backups stay "
                        "root's", folder, gid)  # fmt: skip
            gid = None
    # Also repairs a folder made by an older version (2770, group hotspot: the portal's). Only
    # when wrong: without CAP_FSETID a chmod by a non-member of the group drops the setgid bit.
    wanted = 0o2750 if gid is not None else 0o700
    if stat.S_IMODE(folder.stat().st_mode) != wanted:
        os.chmod(folder, wanted)
    return gid


def _share(path: Path, gid: int | None) -> None:
    if gid is not None and path.lstat().st_gid != gid:
        try:
            os.chown(path, -1, gid, follow_symlinks=False)
        except PermissionError:
            gid = None
    os.chmod(path, 0o640 if gid is not None else 0o600, follow_symlinks=False)


def _make(config: config_mod.Config, now: datetime, kind: str, keep: int) -> Path:
    folder = folder_of(config)
    gid = _prepare(folder, reader_group(config))
    dest = folder / f"{_PREFIX[kind]}-{now.astimezone(UTC):%Y%m%d-%H%M%S}.tar.gz"
    backup(config, dest, now=now, overwrite=True)
    ours = sorted(p for p in folder.iterdir() if _NAMES[kind].match(p.name))
    for old in ours[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    for kept in listing(config):  # older files too, made before the group was right
        _share(kept.path, gid)
    return dest


def nightly(config: config_mod.Config, now: datetime, keep: int = NIGHTLY_KEEP) -> Path | None:
    """hotspotd's nightly job: a backup in `<state_dir>/backups/`, keeping the newest `keep`."""
    if db.sqlite_path(config.database.url) is None:
        log.info("nightly backup skipped: the database is not SQLite (use pg_dump)")
        return None
    dest = _make(config, now, "nightly", keep)
    log.info("nightly backup written to %s", dest)
    return dest


def on_demand(config: config_mod.Config, now: datetime, keep: int = ON_DEMAND_KEEP) -> Path:
    """A backup the admin asked for now, beside the nightly ones; the newest `keep` are kept.
    Raises BackupError (PostgreSQL, no database) as `backup` does."""
    dest = _make(config, now, "on_demand", keep)
    log.info("backup on demand written to %s", dest)
    return dest


def listing(config: config_mod.Config) -> list[Kept]:
    """The backups in the folder, newest first: only files named as this module names them."""
    found = []
    with contextlib.suppress(FileNotFoundError, PermissionError):
        for entry in os.scandir(folder_of(config)):
            for kind, pattern in _NAMES.items():
                match = pattern.match(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    made = datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
                    size = entry.stat(follow_symlinks=False).st_size
                    found.append(Kept(entry.name, kind, made, size, Path(entry.path)))
    return sorted(found, key=lambda k: (k.made_at, k.name), reverse=True)
