"""The base image: one debootstrapped Debian tree, built once and shared copy-on-write by every host."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from . import cache, mirrors
from .settings import Settings
from .util import LabError, log, run, write_atomic

# What a fleet host has before any role runs: systemd as PID 1, SSH, sudo, Python for Ansible
# (python3-apt and python3-packaging for the apt and pip modules).
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "python3-packaging",
    "sudo",
    "iproute2",
    "procps",
    "ca-certificates",
    "openssh-server",
    "debian-archive-keyring",
]

# Bump when the recipe below changes: a base built by an older recipe is rebuilt.
RECIPE_VERSION = 4

SSH_HOSTKEYS_DROPIN = """\
# Host keys are made at first boot so that no two lab hosts share an identity.
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""

SYSTEM_CONF = """\
# A unit that hangs in shutdown must not hold `lab down` for the default 90 s.
[Manager]
DefaultTimeoutStopSec=10s
"""

SSHD_CONF = """\
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

# Units that either cannot work in a container or make tests flaky (apt's daily jobs take the
# dpkg lock in the middle of a converge).
MASKED_UNITS = [
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "systemd-timesyncd.service",
    "e2scrub_all.timer",
    "fstrim.timer",
]


def _recipe(settings: Settings, mirror: str) -> dict:
    return {
        "version": RECIPE_VERSION,
        "suite": settings.suite,
        "packages": PACKAGES,
        "mirror": mirror,
        "user": settings.user,
    }


def _stamp(settings: Settings) -> Path:
    return settings.base_dir / ".oceanid-lab-base.json"


def is_current(settings: Settings) -> bool:
    found = mirrors.read()
    stamp = _stamp(settings)
    if not stamp.is_file():
        return False
    return json.loads(stamp.read_text()) == _recipe(settings, found.debootstrap_mirror(settings.suite))


def _chroot(root: Path, *cmd: str) -> None:
    run(["chroot", str(root), *cmd])


def _customise(root: Path, settings: Settings, found: mirrors.Mirrors) -> None:
    # Identities are made per host at first boot, never inherited from the build.
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    write_atomic(root / "etc/systemd/system/ssh.service.d/lab-hostkeys.conf", SSH_HOSTKEYS_DROPIN)
    write_atomic(root / "etc/systemd/system.conf.d/lab.conf", SYSTEM_CONF)
    write_atomic(root / "etc/ssh/sshd_config.d/lab.conf", SSHD_CONF)
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")

    # The machine may reach the mirrors through a TLS-inspecting gateway: trust what it trusts.
    extra_cas = Path("/usr/local/share/ca-certificates")
    if extra_cas.is_dir():
        shutil.copytree(extra_cas, root / "usr/local/share/ca-certificates", dirs_exist_ok=True)
    _chroot(root, "update-ca-certificates", "--fresh")

    # apt: exactly the machine's own sources for this release.
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    write_atomic(root / "etc/apt/sources.list.d/debian.sources", found.apt_sources_for(settings.suite))
    # pip (also inside virtualenvs, whose pip bundles its own CA list): the system CA bundle and
    # the machine's index, if it has a remote one.
    # (Hosts started while the lab's pip cache answers get their own pip.conf at start: lab/cache.py.)
    write_atomic(root / "etc/pip.conf", cache.pip_conf(found.pip_index_url))

    _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", settings.user)
    write_atomic(root / f"etc/sudoers.d/{settings.user}", f"{settings.user} ALL=(ALL) NOPASSWD:ALL\n", mode=0o440)
    run(["rm", "-rf", str(root / "var/cache/apt/archives"), str(root / "var/lib/apt/lists")])
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    # Like a fresh cloud image: no package index, and one that looks stale, so that
    # `apt: update_cache: true, cache_valid_time: N` refreshes it on first use.
    os.utime(root / "var/lib/apt/lists", (0, 0))


def ensure(settings: Settings, *, rebuild: bool = False) -> Path:
    """Return the base image, building it first if it is missing or from an older recipe."""
    found = mirrors.read()
    mirror = found.debootstrap_mirror(settings.suite)
    if not rebuild and is_current(settings):
        return settings.base_dir
    for tool in ("debootstrap", "systemd-nspawn"):
        if not shutil.which(tool):
            raise LabError(f"'{tool}' is missing: apt-get install debootstrap systemd-container")
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    building = settings.cache_dir / f".build-{settings.suite}-{os.getpid()}"
    run(["rm", "-rf", str(building)])
    log(f"building the {settings.suite} base image from {mirror} (about a minute, once)")
    started = time.monotonic()
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                settings.suite,
                str(building),
                mirror,
            ],
            timeout=1800,
        )
        _customise(building, settings, found)
        write_atomic(building / _stamp(settings).name, json.dumps(_recipe(settings, mirror)))
    except BaseException:
        run(["rm", "-rf", str(building)], check=False)
        raise
    # Publish with one rename; the previous base (if any) is only removed after.
    old = settings.cache_dir / f".old-{settings.suite}-{os.getpid()}"
    if settings.base_dir.exists():
        settings.base_dir.rename(old)
    building.rename(settings.base_dir)
    run(["rm", "-rf", str(old)], check=False)
    log(f"base image ready in {time.monotonic() - started:.0f} s: {settings.base_dir}")
    return settings.base_dir


def recipe_digest(settings: Settings) -> str:
    return hashlib.sha256(_stamp(settings).read_bytes()).hexdigest()[:12]
