"""What a paramiko connection must log into: the target and every jump host,
resolved through the operator's (filtered) ssh_config; no I/O but reading the
config files, cached for the fleet."""

from __future__ import annotations

import getpass
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import paramiko

from fleetscan.errors import TransportError
from fleetscan.model import Target
from fleetscan.transports import sshconfig
from fleetscan.transports.base import ConnectSettings, target_passphrase, target_password
from fleetscan.transports.hostkeys import (
    SSH_PORT,
    KnownHosts,
    LookupName,
    load_known_hosts,
    lookup_name,
)
from fleetscan.transports.sshconfig import full_chain, parse_jump, split_jumps


@lru_cache(maxsize=16)
def _parse_ssh_config(text: str) -> paramiko.SSHConfig:
    # the filtered text holds no `Match exec` (never evaluated) and no Include
    return paramiko.SSHConfig.from_file(io.StringIO(text))


def _ssh_config(files: tuple[str, ...]) -> paramiko.SSHConfig:
    return _parse_ssh_config(sshconfig.filtered_text(files))


@dataclass(frozen=True, slots=True)
class Hop:
    """One SSH server to log into: the target itself or a jump host."""

    alias: str  # what the inventory / ProxyJump said, looked up in ssh config
    hostname: str
    port: int
    user: str
    hostkey_name: LookupName  # known_hosts name (HostKeyAlias or host/[host]:port)
    key_files: tuple[str, ...]
    missing_keys: tuple[str, ...]
    look_for_keys: bool
    jump: tuple[str, ...] = ()
    proxy_command: str | None = None


def resolve_hop(
    alias: str,
    settings: ConnectSettings,
    *,
    port: int | None = None,
    user: str | None = None,
    key_files: tuple[str, ...] = (),
    jump: str | None = None,
) -> Hop:
    """Merge explicit values (inventory / CLI) over ssh config for ``alias``.

    Precedence as in the asyncssh transport: the target's values, then the
    fleet's settings, then ssh config, then the defaults (port 22, local user)."""
    try:
        cfg = _ssh_config(tuple(settings.ssh_config_files())).lookup(alias)
    except TransportError:
        raise
    except Exception as exc:  # unreadable or malformed config
        raise TransportError(f"cannot read ssh config for {alias!r}: {exc}") from None
    hostname = str(cfg.get("hostname", alias))
    try:
        the_port = port or int(cfg.get("port", SSH_PORT))
    except ValueError:
        raise TransportError(f"ssh config: bad Port for {alias!r}") from None
    the_user = user or settings.default_user or cfg.get("user") or getpass.getuser()
    explicit = key_files or settings.client_keys
    candidates = explicit or tuple(cfg.get("identityfile", ()))
    found = tuple(str(Path(k).expanduser()) for k in candidates if Path(k).expanduser().is_file())
    # a missing IdentityFile from ssh config is normal (OpenSSH skips it too);
    # a missing key named by the inventory is worth saying when auth fails
    missing = tuple(k for k in explicit if not Path(k).expanduser().is_file())
    jumps = tuple(split_jumps(jump if jump is not None else cfg.get("proxyjump")))
    proxy = cfg.get("proxycommand")
    return Hop(
        alias=alias,
        hostname=hostname,
        port=the_port,
        user=str(the_user),
        hostkey_name=lookup_name(hostname, the_port, cfg.get("hostkeyalias")),
        key_files=found,
        missing_keys=missing,
        look_for_keys=not candidates,
        jump=jumps,
        proxy_command=str(proxy) if proxy and not jumps and proxy.lower() != "none" else None,
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """Every hop to log into, outermost jump host first, the target last.
    The password belongs to the target hop only."""

    hops: tuple[Hop, ...]
    known: KnownHosts | None
    password: str | None
    passphrase: str | None = None
    accept_new: str | None = None  # record unknown keys there (--accept-new)
    host: str = ""  # the inventory name, for the keys learned


def plan_connection(target: Target, settings: ConnectSettings) -> Plan:
    """The whole chain, as OpenSSH would open it: a jump host's own ssh_config
    ProxyJump is followed too (never skipped), every hop with the fleet's
    known_hosts and keys."""
    hop = resolve_hop(
        target.address,
        settings,
        port=target.port,
        user=target.user,
        key_files=target.key_files,
        jump=target.jump_host,
    )

    def jump_hop(spec: str, chained: bool) -> Hop:
        user, host, port = parse_jump(spec)
        # the first hop follows its own ProxyJump (expanded by full_chain);
        # later hops are reached through the ones before them
        return resolve_hop(
            host,
            settings,
            port=port,
            user=user,
            key_files=target.key_files,
            jump=None if not chained else "none",
        )

    chain = full_chain(list(hop.jump), lambda spec: list(jump_hop(spec, False).jump))
    jumps = [jump_hop(spec, True) for spec in chain]
    known: KnownHosts | None = None
    if settings.hostkey_checking:
        known = load_known_hosts(settings.host_keys_for(target))
    return Plan(
        (*jumps, hop),
        known,
        target_password(target, settings),
        target_passphrase(target, settings),
        settings.accept_new_file(),
        target.name,
    )
