"""`hotspotctl backup` and `hotspotctl restore`: the command line over `hotspotd.backup`.

The work is done in `hotspotd.backup`, which knows nothing of click; this module asks, reports
and sizes the file.
"""

from __future__ import annotations

from pathlib import Path

import click

from hotspotd.backup import backup, read_manifest, restore, sqlite_file
from hotspotd.cli.common import Env, pass_env


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
@pass_env
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
@pass_env
def restore_command(env: Env, file: Path, yes: bool) -> None:
    """Put the backup FILE in place of the database, config and media.

    The previous database is kept as hotspot.db.before-restore. Restart hotspotd and the portal
    afterwards.
    """
    target = sqlite_file(env.config)
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
