# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The converged k3s nodes of molecule/k3s (k3s-s1, k3s-s2 servers; k3s-a1 agent), checked with pytest-testinfra.

k3s cannot be downloaded here: the nodes have the scenario's PLACEHOLDER binary, and k3s.service /
k3s-agent.service are written and verified but never started. The tests show the files, modes, units and the join
token kept on the controller, on every node. test_k3s_reruns.py runs converge.yml again with other inputs.
"""

from __future__ import annotations

import yaml
from k3s_nodes import CONFIG, SCENARIO, SERVERS, TOKEN, ephemeral, name

testinfra_hosts = ["k3s-s1", "k3s-s2", "k3s-a1"]


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
