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

The parts: `archive` (the format, reading and checking one), `snapshot` (making one while
everything runs), `restoring` (putting one in place), `rotation` (the daemon's nightly job).
No command line here: `hotspotctl backup` and `restore` live in `hotspotd.cli.backup`.
"""

from __future__ import annotations

from hotspotd.backup.archive import (
    CONFIG_NAME,
    DB_NAME,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    MEDIA_NAME,
    BackupError,
    Manifest,
    read_manifest,
    sqlite_file,
)
from hotspotd.backup.restoring import BEFORE_RESTORE, RestoreReport, restore
from hotspotd.backup.rotation import NIGHTLY_DIR, NIGHTLY_KEEP, Kept, listing, nightly, on_demand
from hotspotd.backup.snapshot import DatabaseBusy, backup

__all__ = [
    "BEFORE_RESTORE",
    "CONFIG_NAME",
    "DB_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "MEDIA_NAME",
    "NIGHTLY_DIR",
    "NIGHTLY_KEEP",
    "BackupError",
    "DatabaseBusy",
    "Kept",
    "Manifest",
    "RestoreReport",
    "backup",
    "listing",
    "nightly",
    "on_demand",
    "read_manifest",
    "restore",
    "sqlite_file",
]
