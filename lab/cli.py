"""`python3 -m lab`: bring lab hosts up, take them down, look at them, reach them."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import sys
import time
from pathlib import Path

from . import cache, hosts, image, mirrors, network
from . import settings as lab_settings
from .util import LabError, log, run

DEFAULT_INVENTORY = hosts.REPO_ROOT / "inventories" / "lab"


class _Lock:
    """One `up`/`down` at a time: molecule scenarios, integration tests and the main job may share the lab
    (`make test` runs the molecule scenarios beside the integration tests).

    The lock file sits beside the run directory, never inside it, and is never removed: a `down` that empties the
    lab removes the run directory, and a lock file unlinked while another `up` waits on it would let a third
    process lock a new file at the same time."""

    def __init__(self, settings: lab_settings.Settings):
        settings.run_dir.parent.mkdir(parents=True, exist_ok=True)
        self.path = settings.run_dir.parent / f"{settings.run_dir.name}.lock"

    def __enter__(self):
        self.handle = open(self.path, "w")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _ansible_inventory() -> str:
    for candidate in (
        Path(sys.executable).parent / "ansible-inventory",
        hosts.REPO_ROOT / ".venv/bin/ansible-inventory",
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("ansible-inventory")
    if not found:
        raise LabError("ansible-inventory not found: run `make venv` first, or name the hosts to start")
    return found


def inventory_topology(inventory: Path) -> dict[str, list[str]]:
    """Host name -> groups, as the user's inventory says (names and groups never come from code)."""
    proc = run([_ansible_inventory(), "-i", str(inventory), "--list", "--export"], check=False)
    if proc.returncode != 0:
        raise LabError(f"cannot read inventory {inventory}: {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    topology: dict[str, list[str]] = {}

    def walk(group: str, ancestors: list[str]) -> None:
        entry = data.get(group, {})
        chain = ancestors + ([group] if group not in ("all", "ungrouped") else [])
        for host in entry.get("hosts", []):
            topology.setdefault(host, [])
            for name in chain:
                if name not in topology[host]:
                    topology[host].append(name)
        for child in entry.get("children", []):
            walk(child, chain)

    walk("all", [])
    return topology


def cmd_up(settings, args) -> int:
    started = time.monotonic()
    inventory = Path(args.inventory).resolve()
    try:
        topology = inventory_topology(inventory)
    except LabError:
        if not args.names or args.inventory_given:
            raise
        topology = {}  # hosts named on the command line need no inventory (molecule's platforms)
    names = args.names or sorted(topology)
    if not names:
        raise LabError(f"no hosts named and none in {args.inventory}")
    for name in names:
        if not name.replace("-", "").isalnum() or len(name) > 40:
            raise LabError(f"'{name}' is not a valid host name (letters, digits and '-', at most 40)")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts, cgroups)")
    with _Lock(settings):
        hosts.ensure_ssh_key(settings)
        running = [h for h in hosts.known(settings) if hosts.describe(settings, h).running]
        if running and not image.is_current(settings):
            raise LabError("the base image recipe changed while hosts run on the old one: `lab down` first")
        base = image.ensure(settings)
        found = mirrors.read()
        mirror_addresses = mirrors.resolve(found.hostnames)
        mirror_ips = sorted({ip for ips in mirror_addresses.values() for ip in ips})
        network.ensure_bridge(settings, mirror_ips)
        # The package cache binds the bridge address: started once the bridge is there (no-op when running).
        caches = cache.ensure(settings, found)
        results = [
            hosts.start(
                settings,
                name,
                base,
                topology.get(name, []),
                origin=str(inventory) if name in topology else None,
                caches=caches,
            )
            for name in names
        ]
        hosts.write_hosts_files(settings, mirror_addresses)
        hosts.wait_ready(settings, results)
    for host in results:
        host.ssh = True
    if args.molecule:
        print(
            json.dumps(
                [
                    {
                        "instance": h.name,
                        "address": h.address,
                        "user": settings.user,
                        "port": 22,
                        "identity_file": str(settings.ssh_key),
                        "become_method": "sudo",
                    }
                    for h in results
                ]
            )
        )
    elif args.json:
        print(hosts.to_json(results))
    else:
        for host in results:
            print(f"{host.name:20} {host.address:15} ssh {settings.user}@{host.address}")
    log(f"{len(results)} host(s) SSH-ready in {time.monotonic() - started:.1f} s")
    return 0


def _cleanup_if_empty(settings) -> None:
    if hosts.known(settings):
        return
    cache.stop(settings)  # before the bridge whose address it is bound to; what it cached stays
    network.remove_bridge(settings)
    for hierarchy in ("unified", "systemd"):
        parent = Path("/sys/fs/cgroup") / hierarchy / settings.prefix
        if parent.exists():
            parent.rmdir()
    shutil.rmtree(settings.control_path_dir, ignore_errors=True)
    for empty in (settings.run_dir / "hosts", settings.state_dir / "hosts"):
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()


def cmd_down(settings, args) -> int:
    if os.geteuid() != 0:
        raise LabError("the lab needs root")
    with _Lock(settings):
        names = args.names or hosts.known(settings)
        for name in names:
            if name not in hosts.known(settings) and not hosts._host_state_dir(settings, name).exists():
                log(f"{name}: not in the lab")
                continue
            hosts.stop(settings, name)
            print(f"{name}: removed")
        _cleanup_if_empty(settings)
        # Inside the lock: an `up` waiting on it may be about to create hosts in the run directory.
        if not hosts.known(settings) and settings.run_dir.exists() and not any(settings.run_dir.iterdir()):
            settings.run_dir.rmdir()
    return 0


def cmd_status(settings, args) -> int:
    described = [hosts.describe(settings, name) for name in hosts.known(settings)]
    for host in described:
        if host.running:
            probe = run(
                [
                    "ssh",
                    *hosts.ssh_args(settings),
                    f"{settings.user}@{host.address}",
                    "systemctl is-system-running || true",
                ],
                check=False,
                timeout=20,
            )
            host.ssh = probe.returncode == 0
            host.system = probe.stdout.strip() or None
    dropped = network.dropped_packets(settings) if described else 0
    caches = cache.status(settings)
    if args.json:
        print(
            json.dumps(
                {"hosts": [vars(h) for h in described], "egress_dropped_packets": dropped, "package_cache": caches},
                indent=2,
            )
        )
        return 0
    if not described:
        print("no lab hosts")
        _print_caches(caches)
        return 0
    print(f"{'HOST':20} {'ADDRESS':15} {'STATE':8} {'SSH':4} SYSTEM")
    for host in described:
        state = "running" if host.running else "stopped"
        print(
            f"{host.name:20} {host.address:15} {state:8} {'yes' if host.ssh else 'no':4} {getattr(host, 'system', '-')}"
        )
    print(f"egress packets dropped so far: {dropped}")
    _print_caches(caches)
    return 0


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _print_caches(caches: list[dict]) -> None:
    print(f"{'CACHE':6} {'ADDRESS':24} {'STATE':8} {'SIZE':>10} {'SERVED':>7} {'HITS':>6} {'FETCHED':>8} DIRECTORY")
    for entry in caches:
        state = "up" if entry["answering"] else ("starting" if entry["running"] else "stopped")
        print(
            f"{entry['kind']:6} {entry['url']:24} {state:8} {_size(entry['size_bytes']):>10} {entry['served']:>7} "
            f"{entry['hits']:>6} {entry['fetched']:>8} {entry['directory']}"
        )


def cmd_cache(settings, args) -> int:
    if args.action == "clear":
        if os.geteuid() != 0:
            raise LabError("the lab needs root")
        with _Lock(settings):
            cache.clear(settings)
            print(f"emptied {cache.packages_dir(settings)}")
            if any(hosts.describe(settings, h).running for h in hosts.known(settings)):
                # Hosts that run are pointed at the caches: give them empty ones at once.
                cache.ensure(settings, mirrors.read())
        return 0
    caches = cache.status(settings)
    if args.json:
        print(json.dumps(caches, indent=2))
    else:
        _print_caches(caches)
    return 0


def cmd_ssh(settings, args) -> int:
    host = hosts.describe(settings, args.name)
    if not host.running:
        raise LabError(f"{args.name} is not running (lab status)")
    argv = [
        "ssh",
        *hosts.ssh_args(settings),
        "-o",
        "BatchMode=no",
        f"{settings.user}@{host.address}",
        *args.remote_command,
    ]
    os.execvp("ssh", argv)
    return 0


def inventory_data(settings, origin: str | None = None) -> dict:
    """Running hosts as an Ansible inventory; with origin, only those started from that inventory."""
    data: dict = {"_meta": {"hostvars": {}}, "all": {"hosts": [], "children": []}}
    common = " ".join(hosts.ssh_args(settings)[2:]) + f" -o ControlPath={settings.control_path_dir}/%C"
    for name in hosts.known(settings):
        host = hosts.describe(settings, name)
        if not host.running or (origin and host.origin != str(Path(origin).resolve())):
            continue
        data["all"]["hosts"].append(name)
        data["_meta"]["hostvars"][name] = {
            "ansible_host": host.address,
            "ansible_user": settings.user,
            "ansible_ssh_private_key_file": str(settings.ssh_key),
            "ansible_ssh_common_args": common,
            "oceanid_lab_host": True,
        }
        for group in host.groups:
            entry = data.setdefault(group, {"hosts": []})
            entry["hosts"].append(name)
    return data


def cmd_inventory(settings, args) -> int:
    data = inventory_data(settings, args.origin)
    if args.host:
        print(json.dumps(data["_meta"]["hostvars"].get(args.host, {})))
    else:
        print(json.dumps(data, indent=2))
    return 0


def cmd_image(settings, args) -> int:
    image.ensure(settings, rebuild=args.rebuild)
    print(settings.base_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{up,down,status,ssh,inventory,image,cache}")
    up = sub.add_parser("up", help="start hosts (all hosts of the inventory if none is named); keeps running ones")
    up.add_argument("names", nargs="*")
    default_inventory = DEFAULT_INVENTORY.relative_to(hosts.REPO_ROOT)
    up.add_argument(
        "-i",
        "--inventory",
        default=None,
        help=f"inventory to take host names and groups from (default: {default_inventory})",
    )
    up.add_argument("--json", action="store_true", help="print the hosts as JSON")
    up.add_argument("--molecule", action="store_true", help="print molecule's instance config (for its create step)")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser(
        "down", help="stop and remove hosts (all if none is named), and the lab's network after the last"
    )
    down.add_argument("names", nargs="*")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="list hosts, their state, and the egress packets dropped")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    ssh = sub.add_parser("ssh", help="open a shell (or run a command) on a host")
    ssh.add_argument("name")
    ssh.add_argument("remote_command", metavar="command", nargs=argparse.REMAINDER)
    ssh.set_defaults(func=cmd_ssh)
    inventory = sub.add_parser("inventory", help="print an Ansible inventory (script format) of the running hosts")
    inventory.add_argument("--list", action="store_true", help="accepted for Ansible's script inventory protocol")
    inventory.add_argument("--host", help="one host's variables (script inventory protocol)")
    inventory.add_argument("--origin", help="only hosts that `up` started from this inventory (a path)")
    inventory.set_defaults(func=cmd_inventory)
    img = sub.add_parser("image", help="build the base image now (also done by the first `up`)")
    img.add_argument("--rebuild", action="store_true")
    img.set_defaults(func=cmd_image)
    cache_parser = sub.add_parser(
        "cache", help="the package cache (apt and pip on the bridge): show it, or empty it (clear)"
    )
    cache_parser.add_argument("action", nargs="?", choices=["status", "clear"], default="status")
    cache_parser.add_argument("--json", action="store_true")
    cache_parser.set_defaults(func=cmd_cache)
    serve = sub.add_parser("_cache")  # internal: a cache server's supervisor, run by `up` in the background
    serve.add_argument("kind", choices=list(cache.KINDS))
    serve.set_defaults(func=lambda s, a: cache.supervise(s, a.kind))
    pip_proxy = sub.add_parser("_pip_proxy")  # internal: the pip cache itself, run by its supervisor
    pip_proxy.set_defaults(func=lambda s, a: cache.serve_pip(s))
    supervise = sub.add_parser("_supervise")  # internal: run by `up` in the background
    supervise.add_argument("name")
    supervise.set_defaults(func=lambda s, a: hosts.supervise(s, a.name))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        args.inventory_given = args.inventory is not None
        args.inventory = args.inventory or str(DEFAULT_INVENTORY)
    try:
        settings = lab_settings.load()
        return args.func(settings, args) or 0
    except LabError as error:
        log(f"error: {error}")
        return 1
