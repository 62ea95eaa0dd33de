"""One small exception tree for the whole product.

Client errors carry the HTTP status and the stable socket error code they map to, so the
portal and the control socket answer them the same way, and a stable machine `reason` that
says which refusal it is. The web layer picks its translated message by `(code, reason)`, never
by the English text, so a message can be reworded freely. Adapter errors wrap what the kernel
or a subprocess said.
"""

from __future__ import annotations


class HotspotError(Exception):
    """Base of every error this product raises on purpose."""


class ConfigError(HotspotError):
    """The configuration file is missing, unreadable or wrong; names the file and the key."""

    def __init__(self, path: str, key: str | None, reason: str) -> None:
        self.path = path
        self.key = key
        self.reason = reason
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {reason}")


class ClientError(HotspotError):
    """A request that cannot be served as asked; the caller can fix it."""

    status = 400
    code = "bad_request"
    reason = "bad_request"  # a class default; a raise site may name a narrower one

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class InvalidInput(ClientError):
    status = 400
    code = "invalid"
    reason = "invalid"


class NotFound(ClientError):
    status = 404
    code = "not_found"
    reason = "not_found"


class Conflict(ClientError):
    status = 409
    code = "conflict"
    reason = "conflict"


class VoucherTypo(ClientError):
    """The code fails its check character: a typing mistake, caught without the database."""

    status = 400
    code = "typo"
    reason = "typo"


class VoucherRejected(ClientError):
    """The code is well-formed but cannot be used (unknown, expired, used up, revoked)."""

    status = 403
    code = "voucher_rejected"

    def __init__(self, state: str, message: str, *, reason: str | None = None) -> None:
        self.state = state
        super().__init__(message, reason=reason or state)


class DatabaseNotReady(HotspotError):
    """The schema is missing or older than this code: run `hotspotctl db upgrade`."""


class AdapterError(HotspotError):
    """A kernel or subprocess operation failed (nft, tc, netlink)."""
