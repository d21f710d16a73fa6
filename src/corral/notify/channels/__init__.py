"""Where alert notifications go: one small class per channel, built here from the rules file.

A channel spec names its ``type`` (``email``, ``webhook``, ``snmp``, ``alertmanager``) and a
unique ``name`` (the outbox sends each notification once per name). Secrets are read from
0600 files named in the spec, never written in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from corral.errors import ConfigError
from corral.notify.channels.alertmanager import AlertmanagerChannel
from corral.notify.channels.base import Channel, ChannelError, Message, read_secret
from corral.notify.channels.email import EmailChannel
from corral.notify.channels.snmp import SnmpTarget, SnmpTrapChannel
from corral.notify.channels.webhook import WebhookChannel
from corral.notify.mailer import Mailer

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name


class EmailSpec(_Spec):
    type: Literal["email"]
    to: list[str] = Field(min_length=1)


class WebhookSpec(_Spec):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_file: Path
    timeout: float = Field(default=5.0, gt=0, le=60)


class SnmpSpec(_Spec):
    type: Literal["snmp"]
    host: str
    port: int = Field(default=162, ge=1, le=65535)
    version: Literal["2c", "3"] = "2c"
    community_file: Path | None = None
    user: str | None = None
    auth_file: Path | None = None
    priv_file: Path | None = None
    auth_protocol: Literal["SHA", "SHA-256", "SHA-512", "MD5"] = "SHA"
    priv_protocol: Literal["AES", "DES"] = "AES"
    engine_id: str | None = Field(default=None, pattern=r"^0x[0-9A-Fa-f]{10,64}$")


class AlertmanagerSpec(_Spec):
    type: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")
    timeout: float = Field(default=5.0, gt=0, le=60)


ChannelSpec = Annotated[
    EmailSpec | WebhookSpec | SnmpSpec | AlertmanagerSpec, Field(discriminator="type")
]
_SPECS = TypeAdapter(list[ChannelSpec])


def parse_specs(raw: Sequence[Mapping[str, Any]], source: str = "alert rules") -> list[ChannelSpec]:
    try:
        specs = _SPECS.validate_python(list(raw))
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{source}: channels.{key}: {first['msg']}.") from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: channel names must be unique.")
    return specs


def build(spec: ChannelSpec, mailer: Mailer | None) -> Channel:
    """The channel of one spec; its secrets read now from their files."""
    if isinstance(spec, EmailSpec):
        if mailer is None:
            raise ConfigError(f"channel {spec.name} sends e-mail, but no mailer is set up.")
        return EmailChannel(spec.name, spec.to, mailer)
    if isinstance(spec, WebhookSpec):
        secret = read_secret(spec.secret_file, f"channel {spec.name}'s secret")
        return WebhookChannel(spec.name, spec.url, secret, spec.timeout)
    if isinstance(spec, AlertmanagerSpec):
        return AlertmanagerChannel(spec.name, spec.url, spec.timeout)
    return SnmpTrapChannel(spec.name, _snmp_target(spec))


def _snmp_target(spec: SnmpSpec) -> SnmpTarget:
    def secret(path: Path | None, what: str) -> str | None:
        return read_secret(path, f"channel {spec.name}'s {what}") if path else None

    if spec.version == "3" and not (spec.user and spec.engine_id):
        raise ConfigError(f"channel {spec.name}: SNMPv3 needs 'user' and 'engine_id'.")
    return SnmpTarget(
        host=spec.host,
        port=spec.port,
        version=spec.version,
        community=secret(spec.community_file, "community") or "public",
        user=spec.user,
        auth_passphrase=secret(spec.auth_file, "auth passphrase"),
        priv_passphrase=secret(spec.priv_file, "priv passphrase"),
        auth_protocol=spec.auth_protocol,
        priv_protocol=spec.priv_protocol,
        engine_id=spec.engine_id,
    )


__all__ = [
    "AlertmanagerChannel",
    "Channel",
    "ChannelError",
    "ChannelSpec",
    "EmailChannel",
    "EmailSpec",
    "Message",
    "SnmpTrapChannel",
    "WebhookChannel",
    "build",
    "parse_specs",
]
