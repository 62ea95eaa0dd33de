"""A phone's browser, run inside a phone namespace: open a URL, log in on the portal, go on.

Stdlib only, bounded in time. Prints one JSON object with what happened at each step.
Usage: python browser.py URL CODE
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import urllib.parse
import urllib.request

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "id-ID"}


def main(url: str, code: str) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    out: dict[str, object] = {}
    with opener.open(urllib.request.Request(url, headers=HTML), timeout=10) as r:
        page = r.read(100_000).decode()
        out["landed"] = r.geturl()
    out["welcome"] = "Masuk dengan voucher" in page
    match = re.search(r'<form class="card" method="post" action="([^"]+)">\s*'
                      r'<input type="hidden" name="csrf" value="([^"]+)"', page)  # fmt: skip
    if match is None:
        out["error"] = "no voucher form"
        print(json.dumps(out))
        return
    action = urllib.parse.urljoin(out["landed"], match.group(1))  # type: ignore[arg-type]
    data = urllib.parse.urlencode({"csrf": match.group(2), "code": code}).encode()
    with opener.open(urllib.request.Request(action, data=data, headers=HTML), timeout=10) as r:
        out["after_login"] = r.geturl()
        out["body"] = r.read(10_000).decode(errors="replace").strip()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
