"""Alert notifications as SNMP traps (v2c or v3), sent with net-snmp's ``snmptrap``.

The OIDs are those of the shipped CORRAL-ALERT-MIB (``CORRAL-ALERT-MIB.txt`` beside this file).
Why the binary: net-snmp is the reference implementation every trap receiver is tested with,
and it is packaged by Debian (``snmp``). The argument list is built as a list (no shell); the
community and the v3 passphrases are never on the command line (which every local user can
read in /proc): they go into a private snmp.conf in a temporary folder named by SNMPCONFPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from corral.notify.channels.base import ChannelError, Message

MIB_FILE = Path(__file__).with_name("CORRAL-ALERT-MIB.txt")
BASE = "1.3.6.1.3.1057"
TRAPS = {"firing": 1, "resolved": 2, "acknowledged": 3, "silence-expired": 4}
_OBJECT = {"name": 1, "group": 2, "severity": 3, "summary": 4, "count": 5, "key": 6}
_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class SnmpTarget:
    host: str
    port: int = 162
    version: str = "2c"  # 2c | 3
    community: str = field(default="public", repr=False)
    user: str | None = None
    auth_passphrase: str | None = field(default=None, repr=False)
    priv_passphrase: str | None = field(default=None, repr=False)
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"
    engine_id: str | None = None  # our engine id (hex, 0x...), which the receiver knows


def trap_oid(event: str) -> str:
    return f"{BASE}.0.{TRAPS[event]}"


def object_oid(name: str) -> str:
    return f"{BASE}.1.{_OBJECT[name]}"


def varbinds(message: Message) -> list[str]:
    """``OID type value`` triples for snmptrap's argument list."""
    rules = ",".join(sorted({a.rule for a in message.alerts})) or "-"
    severity = max(
        (a.severity for a in message.alerts), key=lambda s: _RANK.get(s, 0), default="info"
    )
    summary = "; ".join(a.summary for a in message.alerts)[:255] or message.title[:255]
    values = [
        ("name", "s", rules),
        ("group", "s", message.group[:255]),
        ("severity", "s", severity),
        ("summary", "s", summary),
        ("count", "u", str(len(message.alerts))),
        ("key", "s", message.key[:255]),
    ]
    return [part for name, kind, value in values for part in (object_oid(name), kind, value)]


class SnmpTrapChannel:
    def __init__(self, name: str, target: SnmpTarget, binary: str | None = None) -> None:
        self._name = name
        self.target = target
        self.binary = binary or shutil.which("snmptrap") or "/usr/bin/snmptrap"

    @property
    def name(self) -> str:
        return self._name

    def send(self, message: Message) -> None:
        t = self.target
        args = [self.binary, "-M", "/nonexistent", "-m", "", "-r", "1", "-t", "3"]
        if t.version == "3" and t.engine_id:
            args += ["-e", t.engine_id]
        args += [f"udp:{t.host}:{t.port}", "", trap_oid(message.event), *varbinds(message)]
        with tempfile.TemporaryDirectory(prefix="corral-snmp-") as folder:
            conf = Path(folder) / "snmp.conf"
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self._conf())
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SNMPCONFPATH": folder}
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ChannelError(f"snmp {self._name}: snmptrap failed: {why[0][:200]}")

    def _conf(self) -> str:
        t = self.target
        if t.version != "3":
            return f"defVersion 2c\ndefCommunity {t.community}\n"
        level = (
            "authPriv"
            if t.priv_passphrase
            else ("authNoPriv" if t.auth_passphrase else "noAuthNoPriv")
        )
        lines = ["defVersion 3", f"defSecurityName {t.user}", f"defSecurityLevel {level}"]
        if t.auth_passphrase:
            lines += [f"defAuthType {t.auth_protocol}", f"defAuthPassphrase {t.auth_passphrase}"]
        if t.priv_passphrase:
            lines += [f"defPrivType {t.priv_protocol}", f"defPrivPassphrase {t.priv_passphrase}"]
        return "\n".join(lines) + "\n"
