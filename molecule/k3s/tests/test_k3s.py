# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The converged k3s nodes of molecule/k3s (k3s-s1, k3s-s2 servers; k3s-a1 agent), checked with pytest-testinfra.

k3s cannot be downloaded here: the nodes have the scenario's PLACEHOLDER binary, and k3s.service /
k3s-agent.service are written and verified but never started. The tests show the files, modes, units, the join
token (kept on the controller, the same after another converge), a wrong checksum refused (url and local), and
refused inputs (an unknown key, a token change without k3s_token_rotate, a host in both groups) failing before
anything is written. converge.yml is run again with other inputs through --extra-vars.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

testinfra_hosts = ["k3s-s1", "k3s-s2", "k3s-a1"]

SCENARIO = Path(__file__).resolve().parents[1]
CONFIG = "/etc/rancher/k3s/config.yaml"
TOKEN = "/etc/rancher/k3s/cluster-token"
SERVERS = ("k3s-s1", "k3s-s2")


def name(host) -> str:
    return host.backend.get_hostname()


def ephemeral() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def converge_with(request, tmp_path: Path, extra: dict, inventories: tuple = (), succeed: bool = True) -> str:
    inventory = request.config.getoption("ansible_inventory")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "--inventory", inventory]
    for extra_inventory in inventories:
        argv += ["--inventory", str(extra_inventory)]
    argv += [str(SCENARIO / "converge.yml"), "--extra-vars", "@" + str(tmp_path / "extra.json")]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900, env=os.environ.copy())
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == succeed, output[-4000:]
    return " ".join(output.split())


def file_state(host, path: str) -> tuple:
    return host.file(path).sha256sum, host.run("stat -c %%.9Y %s", path).stdout.strip()


# --- What the converge left ---------------------------------------------------------------------------------------
def test_the_placeholder_binary_of_the_pinned_version_says_what_it_is(host):
    defaults = yaml.safe_load((SCENARIO.parents[1] / "roles/k3s/defaults/main.yml").read_text(encoding="utf-8"))
    binary = host.file("/usr/local/bin/k3s")
    assert (binary.user, binary.mode) == ("root", 0o755)
    version = host.run("/usr/local/bin/k3s --version")
    assert f"k3s version {defaults['k3s_version']} (oceanid placeholder: NOT k3s)" in version.stdout
    assert host.run("/usr/local/bin/k3s server").rc == 1  # it cannot run anything
    assert host.file("/usr/local/bin/kubectl").linked_to == "/usr/local/bin/k3s"


def address(host, node: str) -> str:
    return host.backend.ansible_runner.get_variables(node)["ansible_host"]


def test_config_yaml_joins_the_cluster_the_right_way(host):
    config_file = host.file(CONFIG)
    assert (config_file.user, config_file.mode) == ("root", 0o600)
    config = yaml.safe_load(config_file.content_string)
    assert config["token-file"] == TOKEN and "token" not in config
    first = f"https://{address(host, 'k3s-s1')}:6443"
    if name(host) == "k3s-s1":
        assert config["cluster-init"] is True and "server" not in config
    else:
        assert config["server"] == first and "cluster-init" not in config
    if name(host) in SERVERS:
        assert config["write-kubeconfig-mode"] == "0640"  # a string, not the integer 416
        assert config["disable"] == ["traefik"] and config["node-label"] == ["oceanid.cluster/lab=true"]
    else:
        assert config["node-ip"] == address(host, "k3s-a1")
        assert config["node-label"] == ["oceanid.cluster/gpu=true"]
        assert config["node-taint"] == ["nvidia.com/gpu=true:NoSchedule"]
        assert "disable" not in config and "write-kubeconfig-mode" not in config
    dropin = host.file("/etc/rancher/k3s/config.yaml.d/10-kubelet.yaml")
    assert dropin.mode == 0o600 and yaml.safe_load(dropin.content_string) == {"kubelet-arg": ["max-pods=150"]}


def test_the_node_checker_is_installed_and_accepts_the_written_files(host):
    command = "server" if name(host) in SERVERS else "agent"
    for path in (CONFIG, "/etc/rancher/k3s/config.yaml.d/10-kubelet.yaml"):
        check = host.run("python3 /usr/local/lib/oceanid/k3s/k3s_config_check.py %s %s", command, path)
        assert check.rc == 0, check.stderr
    refused = host.run(
        "printf 'cluster-init: true\\n' > /tmp/c.yaml && python3 /usr/local/lib/oceanid/k3s/k3s_config_check.py agent /tmp/c.yaml"
    )
    assert refused.rc == 1 and "is a `k3s server` flag only" in refused.stderr


def test_registries_kernel_settings_and_the_token_file(host):
    registries = host.file("/etc/rancher/k3s/registries.yaml")
    assert registries.mode == 0o600
    assert yaml.safe_load(registries.content_string) == {
        "mirrors": {"docker.io": {"endpoint": ["https://registry.oceanid.example"]}}
    }
    assert host.file("/etc/modules-load.d/k3s.conf").contains("^br_netfilter$")
    sysctl = host.file("/etc/sysctl.d/90-k3s.conf").content_string
    assert "net.ipv4.ip_forward=1" in sysctl and "net.bridge.bridge-nf-call-iptables=1" in sysctl
    token = host.file(TOKEN)
    assert (token.user, token.mode) == ("root", 0o600)


def test_the_token_is_the_one_kept_on_the_controller_0600(host):
    kept = ephemeral() / "k3s-token"
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    value = kept.read_text(encoding="utf-8").strip()
    assert len(value) == 48 and value.isalnum()
    assert host.file(TOKEN).content_string.strip() == value


def test_units_are_install_sh_s_verified_and_not_started(host):
    unit = "k3s" if name(host) in SERVERS else "k3s-agent"
    path = f"/etc/systemd/system/{unit}.service"
    text = host.file(path).content_string
    assert f"ExecStart=/usr/local/bin/k3s {'server' if unit == 'k3s' else 'agent'}" in text
    assert f"EnvironmentFile=-/etc/systemd/system/{unit}.service.env" in text
    assert host.file(f"{path}.env").mode == 0o600
    verify = host.run("systemd-analyze verify --man=no %s", path)
    assert verify.rc == 0, verify.stderr
    service = host.service(unit)
    assert not service.is_enabled and not service.is_running  # only a placeholder: never started


def test_an_agent_never_has_k3s_service(host):
    if name(host) in SERVERS:
        assert not host.file("/etc/systemd/system/k3s-agent.service").exists
        return
    assert not host.file("/etc/systemd/system/k3s.service").exists
    assert host.run("systemctl is-enabled k3s.service").stdout.strip() not in ("enabled", "enabled-runtime")


def test_the_airgap_tarball_is_in_agent_images_on_the_local_install(host):
    tarball = host.file("/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar")
    assert tarball.exists == (name(host) == "k3s-s2")


# --- Runs of converge.yml with other inputs (once, on the first host's turn) ------------------------------------
@pytest.fixture(name="only_once")
def fixture_only_once(host):
    if name(host) != "k3s-s1":
        pytest.skip("runs the whole scenario once")


def test_a_second_converge_keeps_the_token_and_changes_nothing(request, tmp_path, host, only_once):
    kept = ephemeral() / "k3s-token"
    before = kept.read_bytes(), kept.stat().st_mtime_ns, file_state(host, TOKEN)
    output = converge_with(request, tmp_path, {})
    for node in ("k3s-s1", "k3s-s2", "k3s-a1"):
        assert " changed=0 " in output.split(f"{node} : ok=")[1][:40], output[-3000:]
    assert "join token: kept on the controller in" in output
    assert (kept.read_bytes(), kept.stat().st_mtime_ns, file_state(host, TOKEN)) == before
    assert kept.read_text(encoding="utf-8").strip() not in output


@pytest.mark.parametrize("method", ["url", "local"])
def test_a_wrong_checksum_is_refused_and_the_binary_kept(request, tmp_path, host, only_once, method):
    before = file_state(host, "/usr/local/bin/k3s")
    root = ephemeral() / "k3s-artifacts"
    (root / "bad/k3s").write_text((root / "good/k3s").read_text(encoding="utf-8") + "# tampered\n", encoding="utf-8")
    # Another version (its own cached checksum file on the nodes) whose binary does not match its sha256sum line.
    extra = {"k3s_install_method": method, "k3s_artifact_dir": str(root / "bad"), "k3s_version": "v1.31.7+k3s1"}
    if method == "url":
        extra["k3s_release_url"] = "http://{{ k3s_placeholder_address }}:{{ k3s_placeholder_port }}/bad"
    output = converge_with(request, tmp_path, extra, succeed=False)
    if method == "url":
        assert "The checksum for /usr/local/bin/k3s did not match" in output or "did not match" in output
    else:
        assert "refused, nothing was copied" in output and "bad/k3s has sha256" in output
    assert file_state(host, "/usr/local/bin/k3s") == before


@pytest.mark.parametrize(
    ("extra", "messages"),
    [
        (
            {"k3s_server_config": {"tls-sans": ["a"]}},
            [
                "k3s-s1: config.yaml would not be read as meant by k3s server, nothing was changed",
                "k3s_server_config: key tls-sans is not a flag of `k3s server` (closest known flag: tls-san)",
            ],
        ),
        (
            {"k3s_token": "another-token-0123456789"},
            [
                "k3s-s1: the join token would change: k3s_token differs from the token in use (kept in k3s_token_file=",
                "set k3s_token_rotate=true",
            ],
        ),
    ],
    ids=["unknown-key", "token-change-without-rotate"],
)
def test_bad_input_fails_preflight_and_changes_nothing(request, tmp_path, host, only_once, extra, messages):
    before = file_state(host, CONFIG), file_state(host, TOKEN), (ephemeral() / "k3s-token").read_bytes()
    output = converge_with(request, tmp_path, extra, succeed=False)
    for message in messages:
        assert message in output
    assert "Write config.yaml" not in output and "another-token-0123456789" not in output
    assert (file_state(host, CONFIG), file_state(host, TOKEN), (ephemeral() / "k3s-token").read_bytes()) == before


def test_a_host_in_both_groups_fails_preflight(request, tmp_path, host, only_once):
    both = tmp_path / "both.yml"
    both.write_text(yaml.safe_dump({"k3s_agents": {"hosts": {"k3s-s2": None}}}), encoding="utf-8")
    before = file_state(host, CONFIG)
    output = converge_with(request, tmp_path, {}, inventories=(both,), succeed=False)
    assert "k3s-s2: is in both k3s_server_group (k3s_servers) and k3s_agent_group (k3s_agents)" in output
    assert file_state(host, CONFIG) == before
