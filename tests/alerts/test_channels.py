"""Each channel against the real thing: e-mail into aiosmtpd, SNMP v2c and v3 traps into
net-snmp's snmptrapd (the v3 one with authentication and privacy), and forwarding into a
real Prometheus Alertmanager; secrets come from 0600 files and never travel in a message."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corral.errors import ConfigError
from corral.notify.channels import (
    AlertmanagerChannel,
    EmailChannel,
    SnmpTrapChannel,
    build,
    parse_specs,
)
from corral.notify.channels.base import AlertItem, Message
from corral.notify.channels.snmp import MIB_FILE, SnmpTarget, object_oid, trap_oid
from corral.notify.mailer import SmtpMailer
from tests.reclaim.conftest import smtp_server
from tests.requires import ALERTMANAGER, SNMPTRAPD, Resource, requires

ENGINE_ID = "0x80001f8880c0ffee01"
AUTH, PRIV = "auth-pass-123", "priv-pass-456"


def message(event: str = "firing", at: float | None = None) -> Message:
    now = time.time() if at is None else at
    item = AlertItem(
        "f00d",
        "vm-cpu-high",
        event if event != "silence-expired" else "firing",
        "critical",
        "cpu_pct of vm-a is 99 > 95",
        99.0,
        now - 600,
        {"host": "kvm-01", "entity": "vm-a"},
    )
    return Message(
        f"vm-cpu-high{{host=kvm-01}}|{event}|1",
        event,
        "vm-cpu-high{host=kvm-01}",
        f"[corral] {event.upper()}: vm-cpu-high (1)",
        now,
        (item,),
    )


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_email_goes_through_the_mailer_to_a_real_smtp_server() -> None:
    requires(Resource.smtp)
    with smtp_server() as (inbox, settings):
        EmailChannel("mail", ["ops@example.test", "noc@example.test"], SmtpMailer(settings)).send(
            message()
        )
    assert sorted(m["To"] for m in inbox.messages) == ["noc@example.test", "ops@example.test"]
    mail = inbox.messages[0]
    assert mail["Subject"] == "[corral] FIRING: vm-cpu-high (1)"
    assert mail["X-Corral-Alert-Event"] == "firing"
    assert "cpu_pct of vm-a is 99 > 95" in mail.get_content()


class TrapReceiver:
    def __init__(self, folder: Path) -> None:
        self.port = _free_udp_port()
        self.log = folder / "traps.log"
        conf = folder / "snmptrapd.conf"
        conf.write_text(
            "authCommunity log corral-community\n"
            f"createUser -e {ENGINE_ID} corral-v3 SHA {AUTH} AES {PRIV}\n"
            "authUser log corral-v3 priv\n"
        )
        self.proc = subprocess.Popen(
            [
                SNMPTRAPD,
                "-f",
                "-n",
                "-On",
                "-m",
                "",
                "-M",
                str(MIB_FILE.parent),
                "-C",
                "-c",
                str(conf),
                "-Lf",
                str(self.log),
                f"udp:127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if self.log.exists() and "NET-SNMP version" in self.log.read_text():
                return
            time.sleep(0.05)
        raise AssertionError("snmptrapd did not start")

    def traps(self, count: int) -> list[str]:
        for _ in range(200):
            lines = [
                ln for ln in self.log.read_text().splitlines() if trap_oid("firing")[:12] in ln
            ]
            if len(lines) >= count:
                return lines
            time.sleep(0.05)
        return lines

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def trapd(tmp_path: Path) -> Iterator[TrapReceiver]:
    requires(Resource.snmptrapd)
    receiver = TrapReceiver(tmp_path)
    yield receiver
    receiver.stop()


def _secret(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def test_snmp_v2c_and_v3_traps_reach_a_real_snmptrapd(trapd: TrapReceiver, tmp_path: Path) -> None:
    specs = parse_specs(
        [
            {
                "name": "v2",
                "type": "snmp",
                "host": "127.0.0.1",
                "port": trapd.port,
                "community_file": str(_secret(tmp_path, "community", "corral-community")),
            },
            {
                "name": "v3",
                "type": "snmp",
                "host": "127.0.0.1",
                "port": trapd.port,
                "version": "3",
                "user": "corral-v3",
                "engine_id": ENGINE_ID,
                "auth_file": str(_secret(tmp_path, "auth", AUTH)),
                "priv_file": str(_secret(tmp_path, "priv", PRIV)),
            },
        ]
    )
    v2, v3 = (build(s, None) for s in specs)
    v2.send(message("firing"))
    v3.send(message("resolved"))
    lines = trapd.traps(2)
    assert len(lines) == 2, trapd.log.read_text()
    firing, resolved = lines
    assert f"= OID: .{trap_oid('firing')}" in firing
    assert f"= OID: .{trap_oid('resolved')}" in resolved
    for line in lines:
        assert f'.{object_oid("name")} = STRING: "vm-cpu-high"' in line
        assert f'.{object_oid("severity")} = STRING: "critical"' in line
        assert f".{object_oid('count')} = Gauge32: 1" in line
    text = trapd.log.read_text()
    assert (
        AUTH not in text and PRIV not in text and "corral-community" not in text.split("\n", 1)[1]
    )


def test_snmp_v3_with_a_wrong_passphrase_is_refused_by_the_receiver(
    trapd: TrapReceiver, tmp_path: Path
) -> None:
    wrong = SnmpTrapChannel(
        "v3",
        SnmpTarget(
            "127.0.0.1",
            trapd.port,
            "3",
            user="corral-v3",
            auth_passphrase="not-the-pass",
            priv_passphrase=PRIV,
            engine_id=ENGINE_ID,
        ),
    )
    wrong.send(message())  # a trap has no answer: the receiver drops it
    right = SnmpTrapChannel(
        "v3",
        SnmpTarget(
            "127.0.0.1",
            trapd.port,
            "3",
            user="corral-v3",
            auth_passphrase=AUTH,
            priv_passphrase=PRIV,
            engine_id=ENGINE_ID,
        ),
    )
    right.send(message())
    assert len(trapd.traps(1)) == 1
    assert "Authentication failed for corral-v3" in trapd.log.read_text()


def test_the_shipped_mib_names_every_trap_and_object() -> None:
    text = MIB_FILE.read_text()
    for name in (
        "corralAlertFiring",
        "corralAlertResolved",
        "corralAlertAcknowledged",
        "corralSilenceExpired",
        "corralAlertSummary",
        "corralAlertKey",
    ):
        assert f"{name} " in text
    assert "{ experimental 1057 }" in text and trap_oid("firing") == "1.3.6.1.3.1057.0.1"


def test_a_secret_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "key"
    loose.write_text("k")
    loose.chmod(0o644)
    (spec,) = parse_specs(
        [{"name": "h", "type": "webhook", "url": "http://x/", "secret_file": str(loose)}]
    )
    with pytest.raises(ConfigError, match="chmod 600"):
        build(spec, None)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    requires(Resource.alertmanager)
    port = _free_tcp_port()
    conf = tmp_path / "alertmanager.yml"
    conf.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={conf}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "alertmanager exited"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_alerts_are_forwarded_to_a_real_alertmanager_and_resolved_there(alertmanager: str) -> None:
    channel = AlertmanagerChannel("am", alertmanager)
    channel.send(message("firing"))
    (active,) = httpx.get(f"{alertmanager}/api/v2/alerts").json()
    assert active["labels"] == {"alertname": "vm-cpu-high", "entity": "vm-a", "host": "kvm-01"}
    assert active["annotations"]["summary"] == "cpu_pct of vm-a is 99 > 95"
    assert active["status"]["state"] == "active"
    channel.send(message("resolved", at=time.time() - 1))
    assert httpx.get(f"{alertmanager}/api/v2/alerts").json() == []  # resolved: no longer listed
