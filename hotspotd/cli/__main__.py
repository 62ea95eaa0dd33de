"""`python -m hotspotd.cli`: hotspotctl where the console script is not installed."""

from __future__ import annotations

from hotspotd.cli import main

if __name__ == "__main__":
    main()
