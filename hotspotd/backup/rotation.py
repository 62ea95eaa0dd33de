"""hotspotd's nightly backup, and which of the older ones it keeps."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from hotspotd import config as config_mod
from hotspotd.backup.snapshot import backup
from hotspotd.core import db

log = logging.getLogger(__name__)

NIGHTLY_DIR = "backups"
NIGHTLY_KEEP = 7
_NIGHTLY_NAME = re.compile(r"^hotspot-\d{8}-\d{6}\.tar\.gz$")


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
