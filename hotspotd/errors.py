"""One small exception tree for the whole product.

Client errors carry the HTTP status and the stable socket error code they map to, so the
portal and the control socket answer them the same way. Adapter errors wrap what the kernel
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


class InvalidInput(ClientError):
    status = 400
    code = "invalid"


class NotFound(ClientError):
    status = 404
    code = "not_found"


class Conflict(ClientError):
    status = 409
    code = "conflict"


class VoucherTypo(ClientError):
    """The code fails its check character: a typing mistake, caught without the database."""

    status = 400
    code = "typo"


class VoucherRejected(ClientError):
    """The code is well-formed but cannot be used (unknown, expired, used up, revoked)."""

    status = 403
    code = "voucher_rejected"

    def __init__(self, state: str, message: str) -> None:
        self.state = state
        super().__init__(message)


class DatabaseNotReady(HotspotError):
    """The schema is missing or older than this code: run `hotspotctl db upgrade`."""


class AdapterError(HotspotError):
    """A kernel or subprocess operation failed (nft, tc, netlink)."""
