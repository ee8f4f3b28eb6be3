# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The seaweedfs role's host mode, rendered by Ansible from the role's own preflight, variables and unit template.

Molecule runs the role on lab hosts; these tests pin the exact command lines for layouts the lab does not
boot (three masters, custom ports), check every unit with `systemd-analyze verify`, and run the preflight
against localhost with bad input: it must fail naming the variable and the host, and show no secret.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "seaweedfs"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
HOSTS = {"node1": "10.0.0.1", "node2": "10.0.0.2", "node3": "10.0.0.3"}


def inventory(tmp_path: Path, masters=("node1",), host_vars=None, **group_vars) -> Path:
    """node1 and node2 are storage nodes, node3 only mounts; all run locally."""
    hosts = {name: {"seaweedfs_address": address, **(host_vars or {}).get(name, {})} for name, address in HOSTS.items()}
    data = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "seaweedfs_install_method": "wheel",
                "seaweedfs_venv": str(tmp_path / "venv"),
                "seaweedfs_mount_dir": str(tmp_path / "mnt" / "shared"),
                "seaweedfs_s3_identities": [
                    {
                        "name": "models",
                        "access_key": "AKMODELS",
                        "secret_key": "models-secret-value",
                        "actions": ["Admin"],
                    }
                ],
                **group_vars,
            },
            "hosts": hosts,
            "children": {
                "seaweedfs_masters": {"hosts": {name: {} for name in masters}},
                "storage_nodes": {"hosts": {"node1": {}, "node2": {}}},
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


RENDER = """
- name: Render the units after the role's preflight
  hosts: all
  gather_facts: true
  gather_subset: ["!all", "min"]
  tasks:
    - name: Run the preflight, keeping the role's variables
      ansible.builtin.include_role:
        name: {role}
        tasks_from: preflight.yml
        public: true
    - name: Render each component's unit
      ansible.builtin.template:
        src: {role}/templates/seaweedfs.service.j2
        dest: "{out}/{{{{ inventory_hostname }}}}-{{{{ __seaweedfs_component }}}}.service"
        mode: "0644"
      loop: "{{{{ __seaweedfs_components }}}}"
      loop_control:
        loop_var: __seaweedfs_component
      delegate_to: localhost
"""


def run(tmp_path: Path, env: dict, playbook_text: str, inventory_path: Path, *args: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(playbook_text, encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory_path), str(playbook), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def render_units(tmp_path: Path, env: dict, **kwargs) -> dict[str, str]:
    out = tmp_path / "units"
    out.mkdir()
    result = run(tmp_path, env, RENDER.format(role=ROLE, out=out), inventory(tmp_path, **kwargs))
    assert result.returncode == 0, result.stdout + result.stderr
    return {path.stem: path.read_text(encoding="utf-8") for path in out.iterdir()}


def directive(unit: str, key: str) -> list[str]:
    """Every value of key= in the unit, continuation lines joined."""
    return [line.split("=", 1)[1] for line in unit.replace("\\\n", " ").splitlines() if line.startswith(key + "=")]


def exec_start(unit: str) -> list[str]:
    return shlex.split(directive(unit, "ExecStart")[0])


def test_each_host_runs_what_its_groups_say(tmp_path, clean_ansible_env):
    units = render_units(tmp_path, clean_ansible_env, host_vars={"node2": {"seaweedfs_storage_only": True}})
    assert sorted(units) == [
        "node1-filer",
        "node1-master",
        "node1-mount",
        "node1-s3",
        "node1-volume",
        "node2-volume",
        "node3-mount",
    ]


def test_volume_command_line_computes_max_from_the_disk_limit(tmp_path, clean_ansible_env):
    units = render_units(
        tmp_path,
        clean_ansible_env,
        seaweedfs_volume_size_limit_mb=1000,
        host_vars={
            "node1": {"seaweedfs_disk_limit_mb": 50000, "seaweedfs_data_center": "dc1", "seaweedfs_rack": "r1"},
            "node2": {"seaweedfs_disk_limit_mb": 2999},
        },
    )
    weed = str(tmp_path / "venv" / "bin" / "weed")
    assert exec_start(units["node1-volume"]) == [
        weed,
        "volume",
        "-ip=10.0.0.1",
        "-ip.bind=10.0.0.1",
        "-port=8080",
        "-port.grpc=18080",
        "-dir=/data/seaweed/volume",
        "-max=50",
        "-master=10.0.0.1:9333.19333",
        "-minFreeSpace=1",
        "-preStopSeconds=10",
        "-dataCenter=dc1",
        "-rack=r1",
    ]
    assert "-max=2" in exec_start(units["node2-volume"])  # 2999 // 1000: whole volumes only
    assert exec_start(units["node1-master"]) == [
        weed,
        "master",
        "-ip=10.0.0.1",
        "-ip.bind=10.0.0.1",
        "-port=9333",
        "-port.grpc=19333",
        "-mdir=/data/seaweed/master",
        "-peers=none",
        "-volumeSizeLimitMB=1000",
        "-defaultReplication=000",
        "-telemetry=false",
    ]
    assert directive(units["node1-volume"], "User") == ["seaweedfs"]


def test_three_masters_name_each_other_and_ports_follow_the_variables(tmp_path, clean_ansible_env):
    units = render_units(
        tmp_path,
        clean_ansible_env,
        masters=("node1", "node2", "node3"),
        seaweedfs_master_port=9400,
        seaweedfs_filer_port=8900,
        seaweedfs_s3_port=8400,
    )
    peers = "10.0.0.1:9400.19400,10.0.0.2:9400.19400,10.0.0.3:9400.19400"
    for host in HOSTS:
        assert f"-peers={peers}" in exec_start(units[f"{host}-master"])
    assert f"-master={peers}" in exec_start(units["node2-volume"])
    assert exec_start(units["node1-s3"])[2:] == [
        "-ip.bind=10.0.0.1",
        "-port=8400",
        "-filer=10.0.0.1:8900.18900",
        "-config=/etc/seaweedfs/s3.json",
    ]


def test_mount_unit_cleans_stale_mounts_waits_for_the_filer_and_restarts_on_failure(tmp_path, clean_ansible_env):
    units = render_units(tmp_path, clean_ansible_env)
    mount_dir = str(tmp_path / "mnt" / "shared")
    remote = units["node3-mount"]
    assert directive(remote, "ExecStartPre") == [
        f"-/usr/bin/fusermount3 -uz {mount_dir}",
        "/usr/bin/python3 /usr/local/libexec/oceanid/seaweedfs_wait.py --any --timeout 120 --check http://10.0.0.1:8888/healthz",
    ]
    assert directive(remote, "ExecStopPost") == [f"-/usr/bin/fusermount3 -uz {mount_dir}"]
    assert directive(remote, "Restart") == ["on-failure"]
    assert directive(remote, "User") == ["root"]
    assert "-allowOthers=true" in exec_start(remote)
    assert f"-dir={mount_dir}" in exec_start(remote)
    assert directive(remote, "After") == ["network-online.target"]
    # where the filer runs on the same host, systemd orders the mount after it too
    assert directive(units["node1-mount"], "After") == [
        "network-online.target seaweedfs-master.service seaweedfs-volume.service seaweedfs-filer.service seaweedfs-s3.service"
    ]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_every_unit_passes_systemd_analyze_verify(tmp_path, clean_ansible_env):
    weed = tmp_path / "venv" / "bin" / "weed"
    weed.parent.mkdir(parents=True)
    weed.write_text("#!/bin/sh\n", encoding="utf-8")
    weed.chmod(0o755)
    units = render_units(tmp_path, clean_ansible_env)
    for name, unit in units.items():
        path = tmp_path / f"seaweedfs-{name.split('-', 1)[1]}.service"
        path.write_text(unit, encoding="utf-8")
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"


# --- Preflight ------------------------------------------------------------------------------------
PREFLIGHT = f"""
- name: Converge, preflight only (the tests run it with --tags seaweedfs_preflight)
  hosts: all
  gather_facts: true
  gather_subset: ["!all", "min"]
  roles:
    - role: {ROLE}
"""


@pytest.mark.parametrize(
    "case",
    [
        {
            "group_vars": {"seaweedfs_volume_size_limit_mb": 1000},
            "host_vars": {"node2": {"seaweedfs_disk_limit_mb": 999}},
            "expect": "node2: seaweedfs_disk_limit_mb=999 is smaller than one volume (seaweedfs_volume_size_limit_mb=1000)",
        },
        {
            "group_vars": {
                "seaweedfs_s3_identities": [
                    {
                        "name": "models",
                        "access_key": "AKMODELS",
                        "secret_key": "models-secret-value",
                        "actions": ["Admin"],
                    },
                    {"name": "nosecret", "access_key": "AKNOSECRET", "actions": ["Read"]},
                ]
            },
            "expect": "node1: seaweedfs_s3_identities entries nosecret need a name, an access_key, a secret_key",
        },
        {
            "group_vars": {"seaweedfs_s3_identities": []},
            "expect": "node1: seaweedfs_s3_identities is empty: the S3 gateway would accept any key.",
        },
        {
            "mount_is_file": True,
            "expect": "must be an absolute path to a directory (or not exist yet); it is a regular file.",
        },
        {
            "host_vars": {"node1": {"seaweedfs_storage_only": True}},
            "expect": "node1: seaweedfs_storage_only is true, so it runs only a volume server",
        },
        {"masters": ("node1", "node2"), "expect": "must name 1 or 3 hosts (an odd number, for a Raft quorum)"},
    ],
    ids=[
        "disk-limit-below-one-volume",
        "identity-without-secret",
        "no-identity",
        "mount-point-is-a-file",
        "storage-only-master",
        "two-masters",
    ],
)
def test_preflight_rejects_bad_input_naming_variable_and_host(tmp_path, clean_ansible_env, case):
    group_vars = dict(case.get("group_vars", {}))
    if case.get("mount_is_file"):
        not_a_dir = tmp_path / "not-a-directory"
        not_a_dir.write_text("a file\n", encoding="utf-8")
        group_vars["seaweedfs_mount_dir"] = str(not_a_dir)
    inventory_path = inventory(
        tmp_path, masters=case.get("masters", ("node1",)), host_vars=case.get("host_vars"), **group_vars
    )
    result = run(tmp_path, clean_ansible_env, PREFLIGHT, inventory_path, "--tags", "seaweedfs_preflight")
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert case["expect"] in output
    assert "models-secret-value" not in output
    # any_errors_fatal: the play stops for every host at the failing check; the last check never runs
    assert "Assert the filer store settings are complete" not in output


def test_preflight_accepts_good_input(tmp_path, clean_ansible_env):
    result = run(tmp_path, clean_ansible_env, PREFLIGHT, inventory(tmp_path), "--tags", "seaweedfs_preflight")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Assert the filer store settings are complete" in result.stdout
