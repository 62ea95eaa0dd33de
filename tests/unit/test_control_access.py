"""Who may ask the daemon for what: residents' operations for the portal, operator operations
only for root and the operator UI's user, each with an actor that the audit log keeps."""

# ruff: noqa: F811  (pytest fixtures imported from test_daemon are used as parameters)

from __future__ import annotations

import json
import os
import pwd
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hotspotd import config
from hotspotd.control import ControlError, ops
from hotspotd.control.client import ControlClient, OperatorClient
from hotspotd.control.server import ControlServer, Peer
from hotspotd.core import db as dbmod
from hotspotd.core import vouchers
from hotspotd.core.models import AuditEvent, Device
from hotspotd.core.ports import Rate
from hotspotd.errors import ClientError, InvalidInput
from tests.conftest import require
from tests.unit.test_daemon import PHONE1, ROOT, Rig, cfg, codes_, rig  # noqa: F401

PORTAL = Peer(pid=2, uid=999, gid=999)  # the residents' portal runs as its own user


def _refused(rig: Rig, op: str, params: dict[str, object], peer: Peer) -> ControlError:
    answer = _answer(rig, op, params, peer)
    assert answer["ok"] is False, answer
    return ControlError(answer["error"], answer["message"], reason=answer["reason"])


def _answer(rig: Rig, op: str, params: dict[str, object], peer: Peer) -> dict[str, object]:
    server = ControlServer.__new__(ControlServer)
    server.handler = rig.d.handle
    return server.answer(json.dumps({"op": op, **params}).encode(), peer)


@pytest.mark.parametrize(
    ("op", "params"),
    [
        ("online", {}),
        ("online", {"page": 1, "find": "02:00"}),
        ("kick", {"target": "10.66.0.11"}),
        ("extend", {"code": "x", "seconds": 366 * 86400, "bytes": 10**13}),
        ("trust", {"mac": "02:00:00:00:00:66"}),
        ("block", {"mac": "02:00:00:00:00:01"}),
        ("revoke", {"code": "x"}),
        ("plan_edit", {"name": "Harian", "changes": {"price_rp": 0}}),
        ("reconcile", {}),
    ],
)
def test_the_residents_portal_cannot_ask_for_an_operator_operation(
    rig: Rig, codes_: list[str], op: str, params: dict[str, object]
) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    # with an actor or without, whatever the portal claims to be
    for claimed in ({}, {"actor": "cli:root"}):
        refusal = _refused(rig, op, {**params, **claimed}, PORTAL)
        assert (refusal.code, refusal.reason) == ("forbidden", "operator_only")
    with dbmod.make_sessionmaker(rig.d.engine)() as tx:
        assert tx.scalars(select(AuditEvent.action)).all() == [
            "voucher.make",
            "voucher.redeem",
        ]  # nothing more
        assert tx.scalar(select(Device).where(Device.mac == "02:00:00:00:00:66")) is None
    assert rig.fw.state().authorized  # the phone is still online
    # and its own operations still work
    status = _answer(rig, "status", {"ip": str(PHONE1.ip)}, PORTAL)
    assert status["ok"] is True


def test_an_operator_operation_without_an_actor_is_refused(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    for actor in (None, "", "   ", "x" * 65, 5, "cli:\x1b[31mroot"):
        params: dict[str, object] = {"target": str(PHONE1.ip)}
        if actor is not None:
            params["actor"] = actor
        refusal = _refused(rig, "kick", params, ROOT)
        assert (refusal.code, refusal.reason) == ("invalid", "no_actor"), actor
    assert rig.fw.state().authorized  # not kicked


def test_an_operator_operation_is_audited_under_its_actor(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.d.handle("block", {"mac": PHONE1.mac, "actor": "cli:siti"}, ROOT)
    rig.d.handle("extend", {"code": codes_[0], "seconds": 60, "actor": "ui:pak-rt"}, ROOT)
    rig.d.handle("revoke", {"code": codes_[1], "actor": "cli:siti"}, ROOT)
    rig.d.handle(
        "plan_edit", {"name": "Harian", "changes": {"time_s": None}, "actor": "ui:pak-rt"}, ROOT
    )
    with dbmod.make_sessionmaker(rig.d.engine)() as tx:
        rows = tx.execute(
            select(AuditEvent.actor, AuditEvent.action).where(
                AuditEvent.actor.not_in(["t", "resident"])
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("cli:siti", "device.block"),
        ("ui:pak-rt", "voucher.extend"),
        ("cli:siti", "voucher.revoke"),
        ("ui:pak-rt", "plan.edit"),
    ]


def test_the_operator_uis_user_gets_operator_operations_and_nothing_else(
    rig: Rig, codes_: list[str]
) -> None:
    operator = pwd.getpwnam("nobody")
    rig.d.access = ops.Access(operator_user="nobody")
    ui = Peer(pid=3, uid=operator.pw_uid, gid=operator.pw_gid)
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    online = _answer(rig, "online", {"actor": "ui:admin"}, ui)
    assert online["ok"] is True and len(online["result"]) == 1  # type: ignore[arg-type]
    # it is not a phone: it cannot log one in, nor out
    refusal = _refused(rig, "logout", {"ip": str(PHONE1.ip)}, ui)
    assert refusal.code == "forbidden"
    # the user named nowhere on this machine matches no one
    rig.d.access = ops.Access(operator_user="no-such-user-here")
    assert _refused(rig, "online", {"actor": "ui:admin"}, ui).code == "forbidden"


def test_the_portals_user_can_never_be_the_operator_user(tmp_path: Path) -> None:
    toml = tmp_path / "hotspot.toml"
    toml.write_text('[daemon]\noperator_user = "hotspot"\n')
    with pytest.raises(config.ConfigError, match=r"operator_user.*residents' portal"):
        config.load(toml)


def test_the_kernel_says_who_is_calling_not_the_caller(
    cfg: config.Config,
    engine: Engine,
    codes_: list[str],
) -> None:
    """Through a real socket, from a process running as another user: SO_PEERCRED decides."""
    require(os.geteuid() == 0, "root, to call the socket as another user")
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="hotspot-ctl-"))
    try:
        folder.chmod(0o711)
        path = folder / "control.sock"
        rig = Rig(replace(cfg, daemon=replace(cfg.daemon, control_socket=path)), engine)
        rig.d.start()
        server = ControlServer(path, rig.d.handle, group=None)
        path.chmod(0o666)
        server.start()
        try:
            as_nobody = _call_as(nobody.pw_uid, nobody.pw_gid, path, "online", actor="cli:root")
            assert (as_nobody["error"], as_nobody["reason"]) == ("forbidden", "operator_only")
            assert OperatorClient(path, "cli:root").call("online") == []  # root may
        finally:
            server.stop()
    finally:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def _call_as(uid: int, gid: int, path: Path, op: str, **params: object) -> dict[str, object]:
    """One request through the real client, from a forked child that dropped to `uid` first;
    what it answered (or refused) comes back over a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no exceptions may escape into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgid(gid)
            os.setuid(uid)
            try:
                said: dict[str, object] = {"ok": True, "result": ControlClient(path).call(
                    op, **params)}  # fmt: skip
            except ControlError as refused:
                said = {"ok": False, "error": refused.code, "reason": refused.reason}
            os.write(write_end, json.dumps(said).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reply = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(reply)  # type: ignore[no-any-return]


def test_a_plan_edit_reaches_the_kernel_before_the_answer(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    assert rig.sh.state()[PHONE1.ip] == Rate(2_000_000, 1_000_000)
    changes = {"down_bps": 500_000, "up_bps": None}
    answer = rig.operator("plan_edit", name="harian", changes=changes)
    assert answer == {"name": "Harian"}
    assert rig.sh.state()[PHONE1.ip] == Rate(500_000, None)  # the new speed, already
    rig.d.poll()
    rig.clock.advance(seconds=60)
    rig.d.poll()  # 60 s charged, not yet enforced against the new limit
    assert rig.fw.state().authorized
    rig.operator("plan_edit", name="Harian", changes={"time_s": 30})  # less than it has used
    assert rig.fw.state().authorized == frozenset()  # ran out: cut at once
    with pytest.raises(InvalidInput, match="nothing to change"):
        rig.operator("plan_edit", name="Harian")
    with pytest.raises(InvalidInput, match="unknown entries: colour"):
        rig.operator("plan_edit", name="Harian", changes={"colour": "red"})


def test_revoke_cuts_every_device_on_the_card(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    answer = rig.operator("revoke", code=codes_[0].lower())
    assert answer["cut"] == [str(PHONE1.ip)]  # type: ignore[index]
    assert rig.fw.state().authorized == frozenset()
    with pytest.raises(ClientError) as caught:
        rig.operator("revoke", code=codes_[0])
    assert caught.value.reason == "revoked"
    with pytest.raises(InvalidInput, match="'code' or 'batch'"):
        rig.operator("revoke")  # one card or one batch, never neither


def test_revoking_a_batch_cuts_its_phones_in_one_go(rig: Rig, codes_: list[str]) -> None:
    from hotspotd.core.models import VoucherBatch

    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    rig.operator("revoke", code=codes_[2])  # revoked already: left as it is
    with dbmod.make_sessionmaker(rig.d.engine)() as tx:
        (batch_id,) = tx.scalars(select(VoucherBatch.id))
    answer = rig.operator("revoke", batch=batch_id)
    assert answer["cut"] == [str(PHONE1.ip)]  # type: ignore[index]
    revoked = sorted(answer["codes"])  # type: ignore[index]
    assert revoked == sorted(vouchers.codes.display(c) for c in codes_[:2])
    assert rig.fw.state().authorized == frozenset()
