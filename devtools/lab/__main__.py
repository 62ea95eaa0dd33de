"""`python -m devtools.lab`: the lab's command line (see devtools.lab.build.main)."""

from __future__ import annotations

import sys

from devtools.lab.build import main

if __name__ == "__main__":
    sys.exit(main())
