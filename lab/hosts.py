"""Host lifecycle: create, boot (and re-boot after a reboot), reach over SSH, and remove without a trace."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import cache, network
from .settings import Settings
from .util import LabError, log, run, spawn_in_background, write_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent
NSPAWN_REBOOT_EXIT = 133
BOOT_TIMEOUT = 90.0
# How long `down` lets a host power off before killing what is left through its cgroup.
GRACEFUL_STOP_TIMEOUT = float(os.environ.get("OCEANID_LAB_STOP_TIMEOUT", "25"))


@dataclass
class Host:
    name: str
    address: str
    groups: list[str] = field(default_factory=list)
    # The inventory `up` took this host from (None for hosts named on the command line only).
    origin: str | None = None
    pid: int | None = None
    running: bool = False
    ssh: bool | None = None


def _host_run_dir(settings: Settings, name: str) -> Path:
    return settings.run_dir / "hosts" / name


def _host_state_dir(settings: Settings, name: str) -> Path:
    return settings.state_dir / "hosts" / name


def _root(settings: Settings, name: str) -> Path:
    return _host_state_dir(settings, name) / "root"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def known(settings: Settings) -> list[str]:
    base = settings.run_dir / "hosts"
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def _supervisor_pid(settings: Settings, name: str) -> int | None:
    pid = _read(_host_run_dir(settings, name) / "supervisor.pid")
    if not pid:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return None
    return int(pid) if b"_supervise" in cmdline and name.encode() in cmdline else None


def describe(settings: Settings, name: str) -> Host:
    run_dir = _host_run_dir(settings, name)
    pid = _supervisor_pid(settings, name)
    groups = json.loads(_read(run_dir / "groups.json") or "[]")
    return Host(
        name=name,
        address=_read(run_dir / "address") or "",
        groups=groups,
        origin=_read(run_dir / "origin"),
        pid=pid,
        running=pid is not None,
    )


def _allocate_address(settings: Settings, name: str) -> ipaddress.IPv4Address:
    current = _read(_host_run_dir(settings, name) / "address")
    if current:
        return ipaddress.IPv4Address(current)
    used = {_read(_host_run_dir(settings, other) / "address") for other in known(settings)}
    # .1 is the bridge; the first ten are kept for the lab's own services.
    for candidate in list(settings.subnet.hosts())[10:]:
        if str(candidate) not in used:
            return candidate
    raise LabError(f"no free address left in {settings.subnet}")


def _hosts_file(settings: Settings, mirror_addresses: dict[str, list[str]]) -> str:
    lines = [
        "# Written by the oceanid lab at every `lab up`; name resolution for lab hosts.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "",
        "# lab hosts",
    ]
    for other in known(settings):
        address = _read(_host_run_dir(settings, other) / "address")
        if address:
            lines.append(f"{address}\t{other}")
    lines += ["", "# package mirrors this machine uses (the only egress a lab host has)"]
    for name, addresses in mirror_addresses.items():
        if addresses:
            lines.append(f"{addresses[0]}\t{name}")
    return "\n".join(lines) + "\n"


def _prepare_root(settings: Settings, name: str, base: Path, caches: dict[str, bool] | None = None) -> None:
    state = _host_state_dir(settings, name)
    upper, work, root = state / "upper", state / "work", state / "root"
    for directory in (upper, work, root):
        directory.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(root):
        run(
            [
                "mount",
                "-t",
                "overlay",
                f"{settings.prefix}-{name}",
                "-o",
                f"lowerdir={base},upperdir={upper},workdir={work}",
                str(root),
            ]
        )
    machine_id = root / "etc/machine-id"
    if not machine_id.read_text().strip():
        # Written once: the host keeps its identity across reboots, no two hosts share one.
        machine_id.write_text(uuid.uuid4().hex + "\n")
    write_atomic(root / "etc/hostname", f"{name}\n")
    write_atomic(root / "etc/resolv.conf", "# No resolver: names come from /etc/hosts (see `lab up`).\n")
    ssh_dir = root / "home" / settings.user / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    write_atomic(ssh_dir / "authorized_keys", Path(f"{settings.ssh_key}.pub").read_text(), mode=0o600)
    uid_gid = (root / "home" / settings.user).stat()
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, uid_gid.st_uid, uid_gid.st_gid)
    # The package cache, in this host's own layer (the base image stays as it is): set at every start.
    cache.configure_host(settings, root, caches or {})


def _start_supervisor(settings: Settings, name: str) -> int:
    run_dir = _host_run_dir(settings, name)
    (run_dir / "exit").unlink(missing_ok=True)
    return spawn_in_background(
        [sys.executable, "-m", "lab", "_supervise", name],
        run_dir / "console.log",
        run_dir / "supervisor.pid",
        REPO_ROOT,
    )


def supervise(settings: Settings, name: str) -> int:
    """Run in the background by `up`: keep one host booted, again after it reboots."""
    for cgroup in settings.cgroup_dirs(name):
        cgroup.mkdir(parents=True, exist_ok=True)
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    stopping = False
    child: subprocess.Popen | None = None

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)  # nspawn asks the host's systemd to power off

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    command = [
        "systemd-nspawn",
        "--quiet",
        "--register=no",
        "--keep-unit",
        "--boot",
        f"--directory={_root(settings, name)}",
        f"--machine={name}",
        f"--hostname={name}",
        f"--network-namespace-path=/run/netns/{network.netns_name(settings, name)}",
        "--bind=/dev/fuse",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
    ]
    code = 0
    while not stopping:  # a `down` that lands before the first boot must not boot the host
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        code = child.wait()
        if code == NSPAWN_REBOOT_EXIT and not stopping:
            print(f"lab: {name} rebooted; booting it again", flush=True)
            continue
        break
    write_atomic(_host_run_dir(settings, name) / "exit", str(code))
    return code


def ensure_ssh_key(settings: Settings) -> None:
    settings.ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not settings.ssh_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "oceanid-lab", "-f", str(settings.ssh_key)])
    settings.known_hosts.touch(mode=0o600)


def ssh_args(settings: Settings) -> list[str]:
    settings.control_path_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return [
        "-i",
        str(settings.ssh_key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={settings.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
    ]


# known_hosts is rewritten (read, filter, replace) by every host that boots or stops, several at a time
# within one `lab up` (a thread per host) and across lab commands: without the lock, a host's rewrite
# dropped the keys another host had just added, whose login then failed with "No ED25519 host key is known".
_KNOWN_HOSTS_THREADS = threading.Lock()


@contextlib.contextmanager
def _known_hosts_locked(settings: Settings):
    with _KNOWN_HOSTS_THREADS, open(settings.ssh_dir / "known_hosts.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _replace_host_keys(settings: Settings, names: tuple[str, ...], lines: list[str]) -> None:
    """Drop every key of ``names`` from known_hosts, then add ``lines``, as one locked rewrite."""
    with _known_hosts_locked(settings):
        current = settings.known_hosts.read_text().splitlines() if settings.known_hosts.exists() else []
        keep = [line for line in current if line and line.split()[0] not in {n for n in names if n}] + lines
        write_atomic(settings.known_hosts, "\n".join(keep) + ("\n" if keep else ""), mode=0o600)


def _forget_host_keys(settings: Settings, *names: str) -> None:
    if settings.known_hosts.exists():
        _replace_host_keys(settings, names, [])


def _wait_ssh(settings: Settings, host: Host) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while True:
        if _supervisor_pid(settings, host.name) is None:
            raise LabError(
                f"{host.name}: the host stopped while booting; see {_host_run_dir(settings, host.name) / 'console.log'}"
            )
        try:
            with socket.create_connection((host.address, 22), timeout=1):
                pass
            scan = run(["ssh-keyscan", "-T", "2", "-t", "ed25519", host.address], check=False)
            keys = [line for line in scan.stdout.splitlines() if line and not line.startswith("#")]
            if keys:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LabError(
                f"{host.name}: SSH not ready at {host.address}:22 after {BOOT_TIMEOUT:.0f} s; see "
                f"{_host_run_dir(settings, host.name) / 'console.log'}"
            )
        time.sleep(0.2)
    lines = []
    for line in keys:
        _addr, keytype, key = line.split()[:3]
        lines += [f"{host.address} {keytype} {key}", f"{host.name} {keytype} {key}"]
    _replace_host_keys(settings, (host.address, host.name), lines)
    while True:
        probe = run(["ssh", *ssh_args(settings), f"{settings.user}@{host.address}", "true"], check=False, timeout=30)
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: SSH login as {settings.user} failed: {probe.stderr.strip()}")
        time.sleep(0.3)


def start(
    settings: Settings,
    name: str,
    base: Path,
    groups: list[str],
    origin: str | None = None,
    caches: dict[str, bool] | None = None,
) -> Host:
    run_dir = _host_run_dir(settings, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    address = _allocate_address(settings, name)
    write_atomic(run_dir / "address", str(address))
    write_atomic(run_dir / "groups.json", json.dumps(groups))
    if origin:
        write_atomic(run_dir / "origin", origin)
    else:
        (run_dir / "origin").unlink(missing_ok=True)
    host = describe(settings, name)
    if host.running:
        return host
    network.create_host_network(settings, name, address)
    _prepare_root(settings, name, base, caches)
    host.pid = _start_supervisor(settings, name)
    host.running = True
    return host


def write_hosts_files(settings: Settings, mirror_addresses: dict[str, list[str]]) -> None:
    text = _hosts_file(settings, mirror_addresses)
    for name in known(settings):
        root = _root(settings, name)
        if os.path.ismount(root):
            write_atomic(root / "etc/hosts", text)


def wait_ready(settings: Settings, hosts: list[Host]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        for future in [pool.submit(_wait_ssh, settings, host) for host in hosts]:
            future.result()


def _cgroup_populated(cgroup: Path) -> bool:
    events = _read(cgroup / "cgroup.events")
    if events is not None:
        return "populated 1" in events
    return any(_read(p) for p in cgroup.rglob("cgroup.procs")) if cgroup.exists() else False


def _remove_cgroup_tree(cgroup: Path) -> None:
    if not cgroup.exists():
        return
    for directory in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        directory.rmdir()
    cgroup.rmdir()


def stop(settings: Settings, name: str) -> None:
    """Power the host off, kill what is left through its cgroup, and remove every trace of it."""
    unified, named = settings.cgroup_dirs(name)
    pid = _supervisor_pid(settings, name)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACEFUL_STOP_TIMEOUT
    while _cgroup_populated(unified) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _cgroup_populated(unified):
        log(f"{name}: did not power off in {GRACEFUL_STOP_TIMEOUT:.0f} s; killing its cgroup")
        (unified / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 10
        while _cgroup_populated(unified):
            if time.monotonic() > deadline:
                raise LabError(f"{name}: processes survive in {unified}")
            time.sleep(0.1)
    for cgroup in (unified, named):
        _remove_cgroup_tree(cgroup)
    root = _root(settings, name)
    if os.path.ismount(root) and run(["umount", str(root)], check=False).returncode != 0:
        run(["umount", "--lazy", str(root)])
    address = _read(_host_run_dir(settings, name) / "address")
    network.remove_host_network(settings, name, ipaddress.IPv4Address(address) if address else None)
    run(["rm", "-rf", str(_host_state_dir(settings, name)), str(_host_run_dir(settings, name))])
    _forget_host_keys(settings, address or "", name)


def to_json(hosts: list[Host]) -> str:
    return json.dumps([asdict(h) for h in hosts], indent=2)
