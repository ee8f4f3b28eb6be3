"""Where the lab keeps things and how its network is shaped.

Every value can be overridden through an ``OCEANID_LAB_*`` environment variable so that two labs
(or a CI run beside a developer's lab) can live on one machine without touching each other.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from .util import LabError


def _env(name: str, default: str) -> str:
    return os.environ.get(f"OCEANID_LAB_{name}", default)


@dataclass(frozen=True)
class Settings:
    # The debootstrapped base image: built once, shared read-only (overlay lowerdir) by every host.
    cache_dir: Path
    # Per-host writable layers, the lab's SSH key and known_hosts.
    state_dir: Path
    # Runtime state: pids, addresses, the lock. Gone with the machine.
    run_dir: Path
    subnet: ipaddress.IPv4Network
    bridge: str
    # Prefix of every network namespace, interface, iptables chain and cgroup the lab creates,
    # so that `down` can prove it left nothing behind.
    prefix: str
    suite: str
    user: str
    # The package cache (lab/cache.py): apt and pip servers on the bridge address, filled on first use.
    package_cache: bool = True
    apt_cache_port: int = 3143
    pip_cache_port: int = 3144

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return next(self.subnet.hosts())

    @property
    def base_dir(self) -> Path:
        return self.cache_dir / f"base-{self.suite}"

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def control_path_dir(self) -> Path:
        return self.run_dir / "cp"

    def chain(self, table_hook: str) -> str:
        return f"{self.prefix.upper()}-{table_hook}"

    def cgroup_dirs(self, host: str) -> list[Path]:
        # Hybrid hierarchy: the host's systemd needs its own cgroup in both the unified and the
        # named systemd hierarchy, or every host sees the other hosts' processes.
        return [
            Path("/sys/fs/cgroup/unified") / self.prefix / host,
            Path("/sys/fs/cgroup/systemd") / self.prefix / host,
        ]


def load() -> Settings:
    settings = Settings(
        cache_dir=Path(_env("CACHE_DIR", "/var/cache/oceanid-lab")),
        state_dir=Path(_env("STATE_DIR", "/var/lib/oceanid-lab")),
        run_dir=Path(_env("RUN_DIR", "/run/oceanid-lab")),
        subnet=ipaddress.IPv4Network(_env("SUBNET", "10.77.0.0/24")),
        bridge=_env("BRIDGE", "olab0"),
        prefix=_env("PREFIX", "olab"),
        suite=_env("SUITE", "bookworm"),
        user=_env("USER", "lab"),
        package_cache=_env("PACKAGE_CACHE", "1").lower() not in ("0", "no", "off", "false"),
        apt_cache_port=int(_env("APT_CACHE_PORT", "3143")),
        pip_cache_port=int(_env("PIP_CACHE_PORT", "3144")),
    )
    # Interface names (bridge, "<prefix>v<index>") must fit Linux's 15 characters.
    if settings.subnet.prefixlen < 16 or len(settings.prefix) > 9 or len(settings.bridge) > 15:
        raise LabError(
            "OCEANID_LAB_SUBNET must be /16 or narrower, OCEANID_LAB_PREFIX at most 9 characters "
            "and OCEANID_LAB_BRIDGE at most 15"
        )
    return settings
