# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/k3s_upgrade.yml and playbooks/k3s_reset.yml run by ansible-playbook on localhost-only inventories.

No Kubernetes API is reachable here: the upgrade is run up to its preflight refusals (everything before the first API
call) and its structure is checked; the reset's file part runs on a temporary tree (its systemd and runtime parts,
which would act on this machine's units, processes, mounts, interfaces and iptables, are skipped by tag).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env

ROOT = Path(__file__).resolve().parents[3]
UPGRADE = ROOT / "playbooks" / "k3s_upgrade.yml"
RESET = ROOT / "playbooks" / "k3s_reset.yml"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def inventory(tmp_path: Path, servers=("s1",), agents=("a1",), both=()) -> Path:
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = {
        "all": {
            "children": {
                "k3s_servers": {"hosts": {n: dict(host) for n in (*servers, *both)}},
                "k3s_agents": {"hosts": {n: dict(host) for n in (*agents, *both)}},
            }
        }
    }
    path = tmp_path / "inventory" / "hosts.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(inv), encoding="utf-8")
    return path


def fake_k3s(tmp_path: Path, version: str = "v1.31.6+k3s1") -> Path:
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    (directory / "k3s").write_text(f'#!/bin/sh\necho "k3s version {version} (placeholder)"\n', encoding="utf-8")
    (directory / "k3s").chmod(0o755)
    return directory


def run(tmp_path: Path, play: Path, inv: Path, extra: dict, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    out = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inv), str(play), "-e", "@" + str(tmp_path / "extra.json"), *args],
        env=isolated_ansible_env(tmp_path / "ansible"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out.flat = " ".join((out.stdout + out.stderr).split())
    return out


def changed(out) -> dict:
    return {
        line.split(" : ")[0].strip(): int(line.split("changed=")[1].split()[0])
        for line in out.stdout.splitlines()
        if " : ok=" in line
    }


@pytest.mark.parametrize("playbook", [UPGRADE, RESET], ids=["upgrade", "reset"])
def test_syntax_check(tmp_path, playbook):
    out = run(tmp_path, playbook, inventory(tmp_path), {}, "--syntax-check")
    assert out.returncode == 0, out.stdout + out.stderr


# --- k3s_upgrade.yml preflight -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("v1.31.0+k3s1", {}, "s1: runs k3s v1.31.6+k3s1, k3s_version is v1.31.0+k3s1. That is a downgrade, refused"),
        ("v1.31.6+k3s0", {}, "That is a downgrade, refused"),
        ("v1.33.0+k3s1", {}, "That skips 1 minor version(s)"),
        ("1.32", {}, "k3s_version must be a k3s release such as v1.31.6+k3s1 (got 1.32)"),
        ("v1.32.0+k3s1", {"k3s_upgrade_agent_batch": "0"}, "k3s_upgrade_agent_batch must be a count"),
        ("v1.32.0+k3s1", {}, "k3s_upgrade_kubeconfig (default: k3s_kubeconfig_dest"),
        ("v1.31.0+k3s1", {"k3s_upgrade_allow_downgrade": True}, "k3s_upgrade_kubeconfig (default: k3s_kubeconfig_dest"),
        ("v1.33.0+k3s1", {"k3s_upgrade_allow_minor_skip": True}, "k3s_upgrade_kubeconfig (default: k3s_kubeconfig_dest"),
    ],
    ids=["downgrade", "older-build", "minor-skip", "bad-version", "bad-batch", "no-kubeconfig", "downgrade-allowed",
         "skip-allowed"],
)  # fmt: skip
def test_upgrade_preflight_refuses_before_touching_any_node(tmp_path, target, extra, message):
    """Every refusal comes from the preflight play: no host reports a change, no node is drained."""
    out = run(
        tmp_path,
        UPGRADE,
        inventory(tmp_path, servers=("s1", "s2")),
        {"k3s_version": target, "k3s_upgrade_bin_dir": str(fake_k3s(tmp_path)), **extra},
    )
    assert out.returncode != 0
    assert message in out.flat
    assert set(changed(out).values()) == {0}
    assert "Upgrade the k3s servers one at a time" not in out.stdout


def test_upgrade_preflight_refuses_a_node_without_k3s(tmp_path):
    out = run(
        tmp_path, UPGRADE, inventory(tmp_path), {"k3s_version": "v1.31.6+k3s1", "k3s_upgrade_bin_dir": "/nonexistent"}
    )
    assert out.returncode != 0
    assert "/nonexistent/k3s does not exist: k3s is not installed on this node" in out.flat


def test_upgrade_preflight_refuses_a_host_in_both_groups(tmp_path):
    inv = inventory(tmp_path, servers=("s1",), agents=(), both=("x1",))
    out = run(tmp_path, UPGRADE, inv, {"k3s_version": "v1.31.6+k3s1", "k3s_upgrade_bin_dir": str(fake_k3s(tmp_path))})
    assert out.returncode != 0
    assert "x1: k3s_version must be" in out.flat and "groups: k3s_agents, k3s_servers" in out.flat


def test_upgrade_kubeconfig_defaults_to_where_the_k3s_role_fetches_it(tmp_path):
    inv = inventory(tmp_path)
    out = run(tmp_path, UPGRADE, inv, {"k3s_version": "v1.31.7+k3s1", "k3s_upgrade_bin_dir": str(fake_k3s(tmp_path))})
    assert f"'{inv.parent}/.kube/k3s.yaml', which does not exist on the controller" in out.flat


def test_upgrade_structure():
    """Servers one at a time, agents in batches of k3s_upgrade_agent_batch, the first failure stops the run; the node
    steps: drain (eviction, PodDisruptionBudgets) -> the k3s role's preflight and install -> Ready on the new version
    -> uncordon; no unit is ever enabled by the playbook."""
    plays = yaml.safe_load(UPGRADE.read_text(encoding="utf-8"))
    assert [p.get("serial") for p in plays] == [None, 1, "{{ k3s_upgrade_agent_batch | default(1) }}"]
    assert [p.get("max_fail_percentage") for p in plays[1:]] == [0, 0]
    assert plays[0]["any_errors_fatal"] is True
    node_tasks = (ROOT / "playbooks" / "tasks" / "k3s_upgrade_node.yml").read_text(encoding="utf-8")
    assert (
        node_tasks.index("state: drain") < node_tasks.index("tasks_from: install") < node_tasks.index("state: uncordon")
    )
    assert "tasks_from: preflight" in node_tasks and "disable_eviction: false" in node_tasks
    assert "enabled: true" not in node_tasks


# --- k3s_reset.yml ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "k3s_reset_confirm must be the cluster's name, 's1' (got nothing)"),
        ({"k3s_reset_confirm": "yes"}, "k3s_reset_confirm must be the cluster's name, 's1' (got 'yes')"),
        ({"k3s_reset_confirm": "a1"}, "Refusing to reset the k3s cluster 's1' (s1, a1)"),
        ({"k3s_reset_confirm": "s1", "k3s_reset_wipe_paths": ["/etc"]}, "at least two levels deep"),
        ({"k3s_reset_confirm": "s1", "k3s_reset_wipe_paths": "/srv/data"}, "k3s_reset_wipe_paths must be a list"),
    ],
    ids=["no-confirm", "yes", "wrong-name", "shallow-wipe-path", "wipe-paths-string"],
)
def test_reset_refusals(tmp_path, extra, message):
    out = run(tmp_path, RESET, inventory(tmp_path), extra)
    assert out.returncode != 0
    assert message in out.flat
    assert "Reset the k3s agents" not in out.stdout


def test_reset_without_servers_needs_a_cluster_name(tmp_path):
    out = run(tmp_path, RESET, inventory(tmp_path, servers=()), {"k3s_reset_confirm": "lab"})
    assert out.returncode != 0 and "This inventory has no k3s_servers" in out.flat
    named = run(
        tmp_path,
        RESET,
        inventory(tmp_path, servers=()),
        {"k3s_reset_confirm": "lab", "k3s_reset_cluster_name": "lab", "k3s_reset_bin_dir": str(tmp_path / "none")},
        "--check",
        "--skip-tags",
        "k3s_reset_systemd,k3s_reset_runtime",
        "--limit",
        "a1",
        "-e",
        json.dumps({f"k3s_reset_{k}": str(tmp_path / k) for k in ("data_dir", "config_dir", "systemd_dir", "kubelet_dir", "cni_dir")}),
        "-e",
        json.dumps({"k3s_reset_run_dirs": [str(tmp_path / "run")]}),
    )  # fmt: skip
    assert named.returncode == 0, named.stdout + named.stderr


def test_reset_order_agents_then_servers_first_server_last():
    plays = yaml.safe_load(RESET.read_text(encoding="utf-8"))
    assert [p["name"] for p in plays] == [
        "Check the reset request",
        "Reset the k3s agents",
        "Reset the k3s servers, the first one last",
    ]
    assert plays[0]["any_errors_fatal"] is True
    assert plays[2]["order"] == "reverse_inventory" and plays[2]["serial"] == 1
