"""The control socket's wire format: one JSON object per line, each way.

A request is `{"op": "login", "ip": "10.66.0.11", "code": "..."}`. An answer is
`{"ok": true, "result": {...}}` or
`{"ok": false, "error": "<stable code>", "reason": "<stable reason>", "message": "<for people>"}`;
callers branch on `error` and `reason`, never on the message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hotspotd.errors import ClientError, HotspotError, VoucherRejected

MAX_LINE = 16 * 1024  # bytes in one request line
READ_TIMEOUT_S = 5.0  # to send one whole line


class ControlError(HotspotError):
    """An error answer from the daemon, as the client sees it (or as the daemon raises it)."""

    def __init__(
        self,
        code: str,
        message: str,
        extra: Mapping[str, Any] | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        self.code = code
        self.reason = reason or code
        self.message = message
        self.extra = dict(extra or {})
        super().__init__(f"{message} ({code})")


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def refusal(code: str, message: str) -> dict[str, Any]:
    """An answer to a request that never reached an operation (bad JSON, too large, ...)."""
    return {"ok": False, "error": code, "reason": code, "message": message}


def error_answer(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, VoucherRejected):
        return {"ok": False, "error": exc.code, "reason": exc.reason, "message": str(exc),
                "state": exc.state}  # fmt: skip
    if isinstance(exc, ClientError):
        return {"ok": False, "error": exc.code, "reason": exc.reason, "message": str(exc)}
    if isinstance(exc, ControlError):
        return {"ok": False, "error": exc.code, "reason": exc.reason, "message": exc.message,
                **exc.extra}  # fmt: skip
    return refusal("internal", "the daemon could not do that; see its log")


def decode_request(line: bytes) -> tuple[str, dict[str, Any]] | dict[str, Any]:
    """(op, params) from one request line, or the refusal to send back."""
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return refusal("bad_json", "not a JSON line")
    if not isinstance(request, dict):
        return refusal("bad_request", "expected a JSON object")
    op = request.pop("op", None)
    if not isinstance(op, str):
        return refusal("bad_request", "missing 'op'")
    return op, request


def decode_answer(reply: bytes) -> Any:
    """The result of an answer line; an error answer is raised as ControlError."""
    try:
        answer = json.loads(reply)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError("bad_answer", "hotspotd gave an unreadable answer") from None
    if not isinstance(answer, dict):
        raise ControlError("bad_answer", "hotspotd gave an unreadable answer")
    if not answer.get("ok"):
        extra = {k: v for k, v in answer.items() if k not in ("ok", "error", "reason", "message")}
        raise ControlError(
            answer.get("error", "error"),
            answer.get("message", ""),
            extra,
            reason=answer.get("reason"),
        )
    return answer.get("result")
