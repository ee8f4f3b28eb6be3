# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The k3s role's preflight, run by ansible-playbook on this machine against three local "hosts" (two servers, one
agent), and its unit template rendered and verified with systemd-analyze. k3s itself never runs here.

Each refused input must fail before anything is written, naming the host and the variable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "k3s"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))

PLAYBOOK = f"""
- hosts: all
  gather_facts: false
  roles:
    - role: {ROLE}
"""


def inventory(tmp_path: Path, both: bool = False) -> Path:
    path = tmp_path / "hosts.yml"
    hosts = {"k3s-s1": {}, "k3s-s2": {}}
    agents = {"k3s-a1": {}, **({"k3s-s2": {}} if both else {})}
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path.write_text(
        json.dumps(
            {"all": {"vars": local, "children": {"k3s_servers": {"hosts": hosts}, "k3s_agents": {"hosts": agents}}}}
        ),
        encoding="utf-8",
    )
    return path


def preflight(tmp_path: Path, env: dict, both: bool = False, **extra) -> tuple[int, str]:
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    settings = {"k3s_token_file": str(tmp_path / "token"), "k3s_service_state": "stopped", **extra}
    (tmp_path / "extra.json").write_text(json.dumps(settings), encoding="utf-8")
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory(tmp_path, both)), str(tmp_path / "play.yml"), "--tags", "k3s_preflight",
         "--extra-vars", "@" + str(tmp_path / "extra.json")],
        env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    (tmp_path / "out.json").write_text(result.stdout, encoding="utf-8")
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.fixture(name="env")
def fixture_env(tmp_path):
    from tests.support.ansible_env import isolated_ansible_env

    return isolated_ansible_env(tmp_path / "ansible")


def test_good_input_passes_and_a_new_token_is_announced(tmp_path, env):
    rc, out = preflight(
        tmp_path,
        env,
        k3s_server_config={"write-kubeconfig-mode": "0644", "disable": ["traefik"]},
        k3s_agent_config={"node-ip": "10.0.0.3"},
        k3s_node_labels={"oceanid.cluster/gpu": "true"},
        k3s_node_taints=["gpu=true:NoSchedule"],
    )
    assert rc == 0, out[-3000:]
    assert "join token: new, generated once and kept in" in out
    assert not (tmp_path / "token").exists()  # preflight writes nothing


def test_an_unknown_key_fails_naming_it_the_host_and_the_closest_flag(tmp_path, env):
    rc, out = preflight(tmp_path, env, k3s_server_config={"tls-sans": ["a"]})
    assert rc != 0
    assert (
        "k3s-s1: config.yaml would not be read as meant by k3s server, nothing was changed: "
        "k3s_server_config: key tls-sans is not a flag of `k3s server` (closest known flag: tls-san)"
    ) in out


def test_a_server_flag_in_the_agent_config_fails(tmp_path, env):
    rc, out = preflight(tmp_path, env, k3s_agent_config={"disable": ["traefik"]})
    assert rc != 0 and "k3s-a1: config.yaml would not be read as meant by k3s agent" in out
    assert "k3s_agent_config: key disable is a `k3s server` flag only" in out


def test_an_unquoted_mode_fails(tmp_path, env):
    rc, out = preflight(tmp_path, env, k3s_server_config={"write-kubeconfig-mode": 0o644})
    assert rc != 0 and "write-kubeconfig-mode is the integer 420" in out and 'quote it, e.g. "0644"' in out


def test_a_bad_dropin_fails_naming_it(tmp_path, env):
    rc, out = preflight(tmp_path, env, k3s_config_dropins={"10-gpu": {"node-labels": ["a=b"]}})
    assert rc != 0 and "drop-in 10-gpu would not be read as meant" in out
    assert "k3s_config_dropins.10-gpu: key node-labels is not a flag" in out and "closest known flag: node-label" in out


def test_a_reserved_key_points_at_the_role_variable(tmp_path, env):
    rc, out = preflight(tmp_path, env, k3s_server_config={"token": "abc"})
    assert rc != 0 and "key token is set by the k3s role itself; use k3s_token instead" in out
    assert "abc" not in out.replace("k3s_", "")


def test_a_host_in_both_groups_fails(tmp_path, env):
    rc, out = preflight(tmp_path, env, both=True)
    assert rc != 0
    assert "k3s-s2: is in both k3s_server_group (k3s_servers) and k3s_agent_group (k3s_agents)" in out


def test_a_token_change_without_rotate_fails_and_with_rotate_passes(tmp_path, env):
    (tmp_path / "token").write_text("old-token-value\n", encoding="utf-8")
    rc, out = preflight(tmp_path, env, k3s_token="new-token-value")
    assert rc != 0
    assert "the join token would change: k3s_token differs from the token in use (kept in k3s_token_file=" in out
    assert "set k3s_token_rotate=true" in out
    assert "old-token-value" not in out and "new-token-value" not in out
    rc, out = preflight(tmp_path, env, k3s_token="new-token-value", k3s_token_rotate=True)
    assert rc == 0, out[-3000:]


def test_the_kept_token_is_used_again(tmp_path, env):
    (tmp_path / "token").write_text("kept-token\n", encoding="utf-8")
    rc, out = preflight(tmp_path, env)
    assert rc == 0 and "join token: kept on the controller in" in out and "kept-token" not in out
    rc, out = preflight(tmp_path, env, k3s_token="kept-token")
    assert rc == 0, out[-2000:]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"k3s_version": "1.31"}, "k3s_version=1.31 is not a k3s release"),
        (
            {"k3s_install_method": "local", "k3s_artifact_dir": "/nonexistent"},
            "k3s_install_method=local needs k3s_artifact_dir",
        ),
        ({"k3s_node_taints": ["gpu"]}, "k3s_node_taints: gpu not key[=value]"),
        ({"k3s_registries": {"auths": {}}}, "k3s_registries may only have mirrors and configs"),
        ({"k3s_server_url": "http://x:6443"}, "is not https://<host>:<port>"),
    ],
)
def test_bad_settings_fail(tmp_path, env, extra, message):
    rc, out = preflight(tmp_path, env, **extra)
    assert rc != 0 and "bad k3s settings" in out and message in out, out[-2000:]


@pytest.mark.parametrize(("command", "unit"), [("server", "k3s"), ("agent", "k3s-agent")])
@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_unit_is_install_sh_s_and_verifies(tmp_path, command, unit):
    binary = tmp_path / "bin" / "k3s"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    binary.chmod(0o755)
    from tests.support.ansible_env import run_local_play

    task = {
        "ansible.builtin.template": {
            "src": f"{ROLE}/templates/k3s.service.j2",
            "dest": f"{tmp_path}/{unit}.service",
            "mode": "0644",
        },
        "vars": {
            "__k3s_unit": unit,
            "__k3s_command": command,
            "_k3s_binary": str(binary),
            "_k3s_config_path": "/etc/rancher/k3s/config.yaml",
            "_k3s_systemd_dir": "/etc/systemd/system",
        },
    }
    result = run_local_play(tmp_path, "render the unit", [task], json_output=False)
    assert result.rc == 0, result.stdout[-2000:]
    text = (tmp_path / f"{unit}.service").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if "=" in line and not line.startswith("#")]
    assert f"ExecStart={binary} {command}" in lines
    assert f"EnvironmentFile=-/etc/systemd/system/{unit}.service.env" in lines
    for line in (
        "Type=notify",
        "KillMode=process",
        "Delegate=yes",
        "Restart=always",
        "ExecStartPre=-/sbin/modprobe br_netfilter",
    ):
        assert line in lines
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / f"{unit}.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def test_the_ha_layout_first_server_inits_the_others_join(tmp_path, env):
    """The composed config.yaml per host (the set_fact of preflight, read from the JSON callback)."""
    env = {**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    labels = {"oceanid.cluster/gpu": "true"}
    rc, _output = preflight(tmp_path, env, k3s_node_labels=labels, k3s_node_taints=["gpu=true:NoSchedule"])
    assert rc == 0
    report = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    (task,) = [t for p in report["plays"] for t in p["tasks"] if t["task"]["name"].endswith("Compose config.yaml")]
    config = {host: result["ansible_facts"]["__k3s_config"] for host, result in task["hosts"].items()}
    common = {
        "token-file": "/etc/rancher/k3s/cluster-token",
        "node-label": ["oceanid.cluster/gpu=true"],
        "node-taint": ["gpu=true:NoSchedule"],
    }
    assert config["k3s-s1"] == {**common, "cluster-init": True}
    assert config["k3s-s2"] == {**common, "server": "https://k3s-s1:6443"}
    assert config["k3s-a1"] == {**common, "server": "https://k3s-s1:6443"}
