"""`python -m devtools.lab`: the lab's command line (up, down, json, and serve-upstream, which
runs inside hs-net). Run it from the clone's root: devtools is not installed."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys

import devtools.lab
from devtools.lab.build import Lab, load_running
from devtools.lab.shell import LabError, say
from devtools.lab.topology import down
from devtools.lab.upstream import serve_upstream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.lab", description=(devtools.lab.__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build the lab (removing an earlier one first), print it as JSON")
    sub.add_parser("down", help="remove the lab")
    sub.add_parser("json", help="print the running lab as JSON (build it if none runs)")
    web = sub.add_parser("serve-upstream", help="(inside hs-net) the lab's web server")
    web.add_argument("--log", required=True)
    web.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            removed = down()
            say(f"removed {', '.join(removed)}" if removed else "nothing to remove")
            return 0
        if args.command == "serve-upstream":
            socket.setdefaulttimeout(30)
            serve_upstream(args.log, args.port)
            return 0
        info = load_running() if args.command == "json" else None
        if info is None:
            info = Lab().up()
        print(json.dumps(info, indent=2))
        return 0
    except (LabError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
