# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the pure parts behind ``python3 -m lab``: the command line, the inventory
topology, the settings, interface names and the hosts file.

No root, no network, no lab action: external commands are replaced by fakes, and every
directory the lab would use points into tmp_path.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from lab import cli, hosts, network
from lab import settings as lab_settings
from lab.util import LabError

SETTINGS_ENV = (
    "CACHE_DIR",
    "STATE_DIR",
    "RUN_DIR",
    "SUBNET",
    "BRIDGE",
    "PREFIX",
    "SUITE",
    "USER",
    "PACKAGE_CACHE",
    "APT_CACHE_PORT",
    "PIP_CACHE_PORT",
)


@pytest.fixture
def clean_lab_env(monkeypatch):
    for name in SETTINGS_ENV:
        monkeypatch.delenv(f"OCEANID_LAB_{name}", raising=False)


@pytest.fixture
def lab_settings_tmp(tmp_path, monkeypatch, clean_lab_env):  # pylint: disable=unused-argument
    """Settings whose cache, state and run directories live in tmp_path (through the environment)."""
    for name in ("CACHE_DIR", "STATE_DIR", "RUN_DIR"):
        monkeypatch.setenv(f"OCEANID_LAB_{name}", str(tmp_path / name.lower()))
    return lab_settings.load()


def _add_host(settings, name: str, address: str | None, groups=(), origin: str | None = None) -> None:
    """What `lab up` leaves in the run directory for a host."""
    run_dir = settings.run_dir / "hosts" / name
    run_dir.mkdir(parents=True)
    if address is not None:
        (run_dir / "address").write_text(address)
    (run_dir / "groups.json").write_text(json.dumps(list(groups)))
    if origin is not None:
        (run_dir / "origin").write_text(origin)


# --- settings -----------------------------------------------------------------------------------


def test_settings_defaults(clean_lab_env):  # pylint: disable=unused-argument
    settings = lab_settings.load()
    assert settings.cache_dir == Path("/var/cache/oceanid-lab")
    assert settings.state_dir == Path("/var/lib/oceanid-lab")
    assert settings.run_dir == Path("/run/oceanid-lab")
    assert settings.subnet == ipaddress.IPv4Network("10.77.0.0/24")
    assert (settings.bridge, settings.prefix, settings.suite, settings.user) == ("olab0", "olab", "bookworm", "lab")
    assert settings.gateway == ipaddress.IPv4Address("10.77.0.1")
    assert settings.base_dir == Path("/var/cache/oceanid-lab/base-bookworm")
    assert settings.ssh_key == Path("/var/lib/oceanid-lab/ssh/id_ed25519")
    assert settings.known_hosts == Path("/var/lib/oceanid-lab/ssh/known_hosts")
    assert settings.control_path_dir == Path("/run/oceanid-lab/cp")
    assert [settings.chain(hook) for hook in ("FORWARD", "INPUT", "NAT")] == ["OLAB-FORWARD", "OLAB-INPUT", "OLAB-NAT"]
    assert settings.cgroup_dirs("node1") == [
        Path("/sys/fs/cgroup/unified/olab/node1"),
        Path("/sys/fs/cgroup/systemd/olab/node1"),
    ]


def test_settings_from_environment(monkeypatch, tmp_path, clean_lab_env):  # pylint: disable=unused-argument
    overrides = {
        "CACHE_DIR": str(tmp_path / "cache"),
        "STATE_DIR": str(tmp_path / "state"),
        "RUN_DIR": str(tmp_path / "run"),
        "SUBNET": "10.88.5.0/24",
        "BRIDGE": "cilab0",
        "PREFIX": "cilab",
        "SUITE": "trixie",
        "USER": "ops",
    }
    for name, value in overrides.items():
        monkeypatch.setenv(f"OCEANID_LAB_{name}", value)
    settings = lab_settings.load()
    assert settings.cache_dir == tmp_path / "cache"
    assert settings.state_dir == tmp_path / "state"
    assert settings.run_dir == tmp_path / "run"
    assert settings.subnet == ipaddress.IPv4Network("10.88.5.0/24")
    assert (settings.bridge, settings.prefix, settings.suite, settings.user) == ("cilab0", "cilab", "trixie", "ops")
    assert settings.gateway == ipaddress.IPv4Address("10.88.5.1")
    assert settings.base_dir == tmp_path / "cache" / "base-trixie"
    assert settings.ssh_key == tmp_path / "state" / "ssh" / "id_ed25519"
    assert settings.chain("FORWARD") == "CILAB-FORWARD"
    assert settings.cgroup_dirs("n1")[0] == Path("/sys/fs/cgroup/unified/cilab/n1")


def test_settings_reject_a_malformed_subnet(monkeypatch, clean_lab_env):  # pylint: disable=unused-argument
    monkeypatch.setenv("OCEANID_LAB_SUBNET", "10.77.0.1/24")  # host bits set
    with pytest.raises(ValueError):
        lab_settings.load()


# --- network names ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["olab", "cilab", "oceanidlab1"])
def test_veth_names_fit_the_kernel_limit_and_are_unique(clean_lab_env, prefix):  # pylint: disable=unused-argument
    settings = replace(lab_settings.load(), prefix=prefix)
    names = [network.veth_name(settings, address) for address in settings.subnet.hosts()]
    assert max(len(name) for name in names) <= 15  # IFNAMSIZ - 1
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("address", "expected"),
    [("10.77.0.11", "olabv11"), ("10.77.0.12", "olabv12"), ("10.77.0.254", "olabv254")],
)
def test_veth_name_is_named_by_the_host_index(clean_lab_env, address, expected):  # pylint: disable=unused-argument
    assert network.veth_name(lab_settings.load(), ipaddress.IPv4Address(address)) == expected


def test_veth_names_are_unique_in_a_wider_subnet(clean_lab_env):  # pylint: disable=unused-argument
    settings = replace(lab_settings.load(), subnet=ipaddress.IPv4Network("10.77.0.0/23"))
    assert network.veth_name(settings, ipaddress.IPv4Address("10.77.0.11")) != network.veth_name(
        settings, ipaddress.IPv4Address("10.77.1.11")
    )


def test_netns_name_carries_the_prefix(clean_lab_env):  # pylint: disable=unused-argument
    assert network.netns_name(lab_settings.load(), "calypso") == "olab-calypso"


# --- the hosts file -----------------------------------------------------------------------------


def test_known_hosts_keeps_every_host_when_many_boot_at_once(lab_settings_tmp):
    """`lab up` records host keys from a thread per host; no rewrite may drop another host's keys."""
    import threading  # pylint: disable=import-outside-toplevel

    lab_settings_tmp.ssh_dir.mkdir(parents=True)
    lab_settings_tmp.known_hosts.write_text("10.77.0.99 ssh-ed25519 OLD\nstale ssh-ed25519 OLD\n")
    start = threading.Barrier(16)

    def boot(index: int) -> None:
        address, name = f"10.77.0.{10 + index}", f"host{index}"
        start.wait()
        for _attempt in range(20):
            hosts._replace_host_keys(
                lab_settings_tmp,
                (address, name),  # pylint: disable=protected-access
                [f"{address} ssh-ed25519 KEY{index}", f"{name} ssh-ed25519 KEY{index}"],
            )

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    hosts._forget_host_keys(lab_settings_tmp, "stale")  # pylint: disable=protected-access
    lines = lab_settings_tmp.known_hosts.read_text().splitlines()
    assert sorted(lines) == sorted(
        ["10.77.0.99 ssh-ed25519 OLD"]
        + [f"10.77.0.{10 + i} ssh-ed25519 KEY{i}" for i in range(16)]
        + [f"host{i} ssh-ed25519 KEY{i}" for i in range(16)]
    )


def test_hosts_file_names_every_lab_host_and_one_address_per_mirror(lab_settings_tmp):
    _add_host(lab_settings_tmp, "beta", "10.77.0.12")
    _add_host(lab_settings_tmp, "alpha", "10.77.0.11")
    _add_host(lab_settings_tmp, "starting", None)  # no address yet: not listed
    mirror_addresses = {
        "apt.example.org": ["192.0.2.10", "192.0.2.11"],
        "unresolved.example.org": [],
        "pip.example.org": ["198.51.100.20"],
    }
    text = hosts._hosts_file(lab_settings_tmp, mirror_addresses)  # pylint: disable=protected-access
    assert text == (
        "# Written by the oceanid lab at every `lab up`; name resolution for lab hosts.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "\n"
        "# lab hosts\n"
        "10.77.0.11\talpha\n"
        "10.77.0.12\tbeta\n"
        "\n"
        "# package mirrors this machine uses (the only egress a lab host has)\n"
        "192.0.2.10\tapt.example.org\n"
        "198.51.100.20\tpip.example.org\n"
    )


def test_hosts_file_of_an_empty_lab(lab_settings_tmp):
    text = hosts._hosts_file(lab_settings_tmp, {})  # pylint: disable=protected-access
    assert text.endswith("# lab hosts\n\n# package mirrors this machine uses (the only egress a lab host has)\n")
    assert "10.77." not in text


def test_addresses_start_after_the_reserved_ten_and_are_kept(lab_settings_tmp):
    allocate = hosts._allocate_address  # pylint: disable=protected-access
    assert allocate(lab_settings_tmp, "first") == ipaddress.IPv4Address("10.77.0.11")
    _add_host(lab_settings_tmp, "a", "10.77.0.11")
    _add_host(lab_settings_tmp, "b", "10.77.0.13")
    assert allocate(lab_settings_tmp, "c") == ipaddress.IPv4Address("10.77.0.12")
    assert allocate(lab_settings_tmp, "b") == ipaddress.IPv4Address("10.77.0.13")


def test_describe_reads_the_run_directory(lab_settings_tmp):
    _add_host(lab_settings_tmp, "calypso", "10.77.0.11", groups=["gpu_hosts"], origin="/srv/inv")
    host = hosts.describe(lab_settings_tmp, "calypso")
    assert (host.name, host.address, host.groups, host.origin) == ("calypso", "10.77.0.11", ["gpu_hosts"], "/srv/inv")
    assert (host.pid, host.running) == (None, False)  # no supervisor.pid


# --- inventory topology (ansible-inventory --list --export) -------------------------------------

EXPORTED_INVENTORY = {
    "_meta": {"hostvars": {"tethys": {"ansible_host": "tethys.example.org"}}},
    "all": {"children": ["ungrouped", "fleet", "storage_nodes"]},
    "ungrouped": {"hosts": ["loner"]},
    "fleet": {"children": ["k3s_servers", "gpu_hosts"], "vars": {"fleet_var": 1}},
    "k3s_servers": {"hosts": ["tethys"]},
    "gpu_hosts": {"hosts": ["calypso"], "children": ["gpu_ec2"]},
    "gpu_ec2": {"hosts": ["ec2-gpu1"]},
    "storage_nodes": {"hosts": ["seaweed1", "calypso"]},
}


@pytest.fixture
def fake_ansible_inventory(monkeypatch):
    """Replace the ansible-inventory call; return the list of commands it was given."""
    calls: list[list[str]] = []

    def _install(data=None, returncode: int = 0, stderr: str = ""):
        def _run(cmd, **kwargs):  # pylint: disable=unused-argument
            calls.append(cmd)
            return subprocess.CompletedProcess(cmd, returncode, stdout=json.dumps(data or {}), stderr=stderr)

        monkeypatch.setattr(cli, "_ansible_inventory", lambda: "ansible-inventory")
        monkeypatch.setattr(cli, "run", _run)
        return calls

    return _install


def test_inventory_topology_gives_every_host_all_its_ancestor_groups(fake_ansible_inventory, tmp_path):
    calls = fake_ansible_inventory(EXPORTED_INVENTORY)
    topology = cli.inventory_topology(tmp_path / "inv")
    assert calls == [["ansible-inventory", "-i", str(tmp_path / "inv"), "--list", "--export"]]
    assert topology == {
        "loner": [],
        "tethys": ["fleet", "k3s_servers"],
        "calypso": ["fleet", "gpu_hosts", "storage_nodes"],
        "ec2-gpu1": ["fleet", "gpu_hosts", "gpu_ec2"],
        "seaweed1": ["storage_nodes"],
    }


def test_inventory_topology_never_lists_all_or_ungrouped(fake_ansible_inventory, tmp_path):
    fake_ansible_inventory({"all": {"hosts": ["direct"], "children": ["ungrouped"]}, "ungrouped": {"hosts": ["u1"]}})
    assert cli.inventory_topology(tmp_path) == {"direct": [], "u1": []}


def test_inventory_topology_of_an_empty_inventory(fake_ansible_inventory, tmp_path):
    fake_ansible_inventory({"_meta": {"hostvars": {}}, "all": {"children": ["ungrouped"]}})
    assert cli.inventory_topology(tmp_path) == {}


def test_inventory_topology_reports_ansible_inventory_errors(fake_ansible_inventory, tmp_path):
    fake_ansible_inventory(returncode=1, stderr="[WARNING]: Unable to parse inventory\n")
    with pytest.raises(LabError, match="cannot read inventory .*: \\[WARNING\\]: Unable to parse inventory$"):
        cli.inventory_topology(tmp_path / "broken")


# --- the script inventory of running hosts ------------------------------------------------------


def test_inventory_data_lists_running_hosts_of_one_origin(lab_settings_tmp, monkeypatch, tmp_path):
    origin = tmp_path / "inventories" / "lab"
    origin.mkdir(parents=True)
    _add_host(lab_settings_tmp, "calypso", "10.77.0.11", groups=["gpu_hosts"], origin=str(origin))
    _add_host(lab_settings_tmp, "tethys", "10.77.0.12", groups=["k3s_servers"], origin=str(origin))
    _add_host(lab_settings_tmp, "hb-node1", "10.77.0.13", groups=["gpu_hosts"])  # a molecule host
    _add_host(lab_settings_tmp, "stopped", "10.77.0.14", origin=str(origin))
    monkeypatch.setattr(hosts, "_supervisor_pid", lambda s, name: None if name == "stopped" else 4242)

    everything = cli.inventory_data(lab_settings_tmp)
    assert everything["all"]["hosts"] == ["calypso", "hb-node1", "tethys"]
    assert everything["gpu_hosts"]["hosts"] == ["calypso", "hb-node1"]

    fleet = cli.inventory_data(lab_settings_tmp, origin=str(origin))
    assert fleet["all"]["hosts"] == ["calypso", "tethys"]
    assert fleet["gpu_hosts"] == {"hosts": ["calypso"]}
    assert fleet["k3s_servers"] == {"hosts": ["tethys"]}
    calypso = fleet["_meta"]["hostvars"]["calypso"]
    assert calypso["ansible_host"] == "10.77.0.11"
    assert calypso["ansible_user"] == "lab"
    assert calypso["ansible_ssh_private_key_file"] == str(lab_settings_tmp.ssh_key)
    assert f"UserKnownHostsFile={lab_settings_tmp.known_hosts}" in calypso["ansible_ssh_common_args"]
    assert f"ControlPath={lab_settings_tmp.control_path_dir}/%C" in calypso["ansible_ssh_common_args"]
    assert "-i " not in calypso["ansible_ssh_common_args"]  # the key is its own variable


# --- command line -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "func", "expected"),
    [
        (["up"], "cmd_up", {"names": [], "inventory": None, "json": False, "molecule": False}),
        (
            ["up", "gpu2", "gpu3", "-i", "inventories/example", "--json"],
            "cmd_up",
            {"names": ["gpu2", "gpu3"], "inventory": "inventories/example", "json": True, "molecule": False},
        ),
        (
            ["up", "--molecule", "hb-node1"],
            "cmd_up",
            {"names": ["hb-node1"], "inventory": None, "json": False, "molecule": True},
        ),
        (["down"], "cmd_down", {"names": []}),
        (["down", "a", "b"], "cmd_down", {"names": ["a", "b"]}),
        (["status"], "cmd_status", {"json": False}),
        (["status", "--json"], "cmd_status", {"json": True}),
        (["ssh", "calypso"], "cmd_ssh", {"name": "calypso", "remote_command": []}),
        (
            ["ssh", "calypso", "systemctl", "--failed", "-l"],
            "cmd_ssh",
            {"name": "calypso", "remote_command": ["systemctl", "--failed", "-l"]},
        ),
        (["inventory"], "cmd_inventory", {"list": False, "host": None, "origin": None}),
        (["inventory", "--list"], "cmd_inventory", {"list": True, "host": None, "origin": None}),
        (["inventory", "--host", "calypso"], "cmd_inventory", {"list": False, "host": "calypso", "origin": None}),
        (
            ["inventory", "--list", "--origin", "/srv/inv"],
            "cmd_inventory",
            {"list": True, "host": None, "origin": "/srv/inv"},
        ),
        (["image"], "cmd_image", {"rebuild": False}),
        (["image", "--rebuild"], "cmd_image", {"rebuild": True}),
    ],
)
def test_parser_subcommands(argv, func, expected):
    args = cli.build_parser().parse_args(argv)
    assert args.command == argv[0]
    assert args.func is getattr(cli, func)
    assert {key: getattr(args, key) for key in expected} == expected


def test_parser_has_an_internal_supervise_command():
    args = cli.build_parser().parse_args(["_supervise", "calypso"])
    assert (args.command, args.name) == ("_supervise", "calypso")
    assert callable(args.func)


def test_help_does_not_show_the_internal_command():
    assert "SUPPRESS" not in cli.build_parser().format_help()


@pytest.mark.parametrize(
    "argv",
    [[], ["launch"], ["ssh"], ["image", "--force"], ["down", "--json"], ["_supervise"]],
)
def test_parser_rejects(argv, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.build_parser().parse_args(argv)
    assert excinfo.value.code == 2
    assert "usage: python3 -m lab" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "inventory", "given"),
    [
        (["up"], str(cli.DEFAULT_INVENTORY), False),
        (["up", "-i", "inventories/example"], "inventories/example", True),
    ],
)
def test_main_defaults_the_inventory_of_up(monkeypatch, clean_lab_env, argv, inventory, given):  # pylint: disable=unused-argument
    seen = {}

    def _fake_up(settings, args):
        seen.update(settings=settings, inventory=args.inventory, given=args.inventory_given)
        return 0

    monkeypatch.setattr(cli, "cmd_up", _fake_up)
    assert cli.main(argv) == 0
    assert (seen["inventory"], seen["given"]) == (inventory, given)
    assert seen["settings"] == lab_settings.load()


def test_default_inventory_is_the_lab_inventory():
    assert cli.DEFAULT_INVENTORY == hosts.REPO_ROOT / "inventories" / "lab"
    assert (cli.DEFAULT_INVENTORY / "hosts.yml").is_file()


def test_main_prints_lab_errors_without_a_traceback(monkeypatch, capsys, clean_lab_env):  # pylint: disable=unused-argument
    def _failing(settings, args):
        raise LabError("no hosts named and none in inventories/lab")

    monkeypatch.setattr(cli, "cmd_status", _failing)
    assert cli.main(["status"]) == 1
    assert capsys.readouterr().err == "lab: error: no hosts named and none in inventories/lab\n"
