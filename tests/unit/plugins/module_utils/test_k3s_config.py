# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""config.yaml checks against the flag table copied from k3s (module_utils/k3s_config.py, k3s_flags.py), the role's
file format, and the node-side checker script (roles/k3s/files/k3s_config_check.py) run as the role runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.oceanid.fleet.plugins.module_utils import k3s_config, k3s_flags

ROOT = Path(__file__).resolve().parents[4]
# The part of the k3s facts file the tool reads, copied into the repository (its README names the source).
SPEC = ROOT / "tests" / "support" / "k3s_specs" / "k3s-flags.json"


def errors(config, command="server", **kwargs):
    return k3s_config.config_errors(config, command, k3s_flags.FLAGS, k3s_flags.CHOICES, **kwargs)


def test_the_table_names_its_source_commit_and_has_both_commands():
    assert k3s_flags.K3S_SOURCE_COMMIT == "469d009fb2b4d53a387882dc2a0708cfd5efc434"
    assert len(k3s_flags.FLAGS["server"]) > 100 and len(k3s_flags.FLAGS["agent"]) > 40
    assert k3s_flags.FLAGS["server"]["node-label"][:2] == ("stringSlice", True)
    assert "cluster-init" not in k3s_flags.FLAGS["agent"] and "disable-apiserver-lb" not in k3s_flags.FLAGS["server"]


def test_the_committed_table_is_what_the_tool_generates_from_the_facts(tmp_path):
    out = tmp_path / "k3s_flags.py"
    subprocess.run([sys.executable, str(ROOT / "tools" / "k3s_flags.py"), str(SPEC), str(out)], check=True)
    assert out.read_text(encoding="utf-8") == (ROOT / "plugins/module_utils/k3s_flags.py").read_text(encoding="utf-8")


def test_a_good_server_config_passes():
    config = {
        "write-kubeconfig-mode": "0644",
        "disable": ["traefik", "servicelb"],
        "tls-san": ["k3s.example", "10.0.0.1"],
        "cluster-init": True,
        "https-listen-port": 6443,
        "etcd-snapshot-schedule-cron": "0 */6 * * *",
        "kubelet-arg": ["max-pods=200"],
        "node-label+": ["a=b"],
        "t": "secret",  # an alias
        "etcd-s3-timeout": "5m0s",
    }
    assert errors(config) == []


def test_an_unknown_key_names_the_closest_flag():
    assert errors({"tls-sans": ["x"]}, where="k3s_server_config") == [
        "k3s_server_config: key tls-sans is not a flag of `k3s server` (closest known flag: tls-san)"
    ]
    assert "no known flag is close" in errors({"zzzzzzzz": 1})[0]


def test_server_only_keys_on_an_agent_and_agent_only_keys_on_a_server_are_refused():
    (agent,) = errors({"cluster-init": True}, "agent")
    assert (
        "key cluster-init is a `k3s server` flag only" in agent
        and "flag provided but not defined: -cluster-init" in agent
    )
    (server,) = errors({"disable-apiserver-lb": True}, "server")
    assert "key disable-apiserver-lb is a `k3s agent` flag only: `k3s server` would skip it" in server


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"write-kubeconfig-mode": 420}, "YAML reads an unquoted mode such as 0644 as an octal number"),
        ({"write-kubeconfig-mode": "rw-r--r--"}, "quoted octal file mode"),
        ({"cluster-init": "yes"}, 'cluster-init is a boolean flag (true or false), not the string "yes"'),
        ({"https-listen-port": "6443"}, "https-listen-port is an integer flag"),
        ({"https-listen-port": True}, "https-listen-port is an integer flag, not a boolean"),
        ({"etcd-s3-timeout": 300}, "etcd-s3-timeout is a Go duration"),
        ({"node-name": ["a", "b"]}, "node-name is not repeatable"),
        ({"node-name+": "a"}, "appends (+), but node-name is not repeatable"),
        ({"kubelet-arg": [{"a": 1}]}, "kubelet-arg is a list of strings (repeatable flag), not a mapping"),
        ({"disable": ["traefik,bogus"]}, 'disable value "bogus" is not one of coredns'),
        ({"flannel-backend": "udp"}, 'flannel-backend value "udp" is not one of none, vxlan'),
        ({"node-name": None}, "node-name has null as value"),
        ({"node-name": {"a": 1}}, "node-name has a mapping as value"),
        ({"--node-name": "x"}, 'key "--node-name" is not a k3s flag name'),
    ],
)
def test_bad_values_are_refused_with_the_reason(config, message):
    found = errors(config)
    assert len(found) == 1 and message in found[0], found


def test_reserved_keys_point_at_the_role_variable():
    found = errors({"token": "x", "s": "https://a:6443"}, reserved={"token": "k3s_token", "server": "k3s_server_url"})
    assert found == [
        "config.yaml: key s is set by the k3s role itself; use k3s_server_url instead",
        "config.yaml: key token is set by the k3s role itself; use k3s_token instead",
    ]


def test_not_a_mapping():
    assert errors(["a"]) == ["config.yaml is a list, not a mapping of k3s flags"]
    with pytest.raises(ValueError):
        errors({}, "etcd-snapshot")


CONFIG = {
    "token-file": "/etc/rancher/k3s/cluster-token",
    "cluster-init": True,
    "write-kubeconfig-mode": "0644",
    "node-label": ["gpu=true", 'odd="quoted" \\ value \u00e9'],
    "disable": [],
    "https-listen-port": 6443,
}


def test_dump_is_yaml_that_reads_back_exactly_and_keeps_modes_strings():
    text = k3s_config.dump(CONFIG, header="# managed")
    assert text.startswith("# managed\n")
    assert 'write-kubeconfig-mode: "0644"\n' in text and "cluster-init: true\n" in text
    assert yaml.safe_load(text) == CONFIG  # what a YAML 1.1 parser (as k3s's yaml.v2) reads
    assert k3s_config.parse(text) == CONFIG


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("write-kubeconfig-mode: 0644\n", "leading 0 (YAML reads it as octal)"),
        ("a: yes\n", "yes is not a quoted string"),
        ("  - x\n", "a list item without a key above it"),
        ("a: 1\na: 2\n", "key a given twice"),
        ("a:\n  b: 1\n", "not 'key: value'"),
        ('a: "x\n', "a double-quoted string that does not parse"),
    ],
)
def test_parse_refuses_anything_but_the_roles_format(text, message):
    with pytest.raises(k3s_config.ConfigFormatError, match="line"):
        k3s_config.parse(text)
    try:
        k3s_config.parse(text)
    except k3s_config.ConfigFormatError as exc:
        assert message in str(exc)


@pytest.fixture(name="checker")
def fixture_checker(tmp_path):
    """The three files the role installs on a node, in one directory, run by a Python without the collection."""
    for source in (
        ROOT / "roles/k3s/files/k3s_config_check.py",
        ROOT / "plugins/module_utils/k3s_config.py",
        ROOT / "plugins/module_utils/k3s_flags.py",
    ):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path / "k3s_config_check.py"


def run_checker(checker, command, text, tmp_path):
    path = tmp_path / "config.yaml.tmp"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-I", str(checker), command, str(path)], capture_output=True, text=True, check=False
    )


def test_the_node_checker_accepts_what_the_role_writes(checker, tmp_path):
    result = run_checker(checker, "server", k3s_config.dump(CONFIG), tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("agent", 'token-file: "/x"\ncluster-init: true\n', "key cluster-init is a `k3s server` flag only"),
        ("server", "write-kubeconfig-mode: 0644\n", "leading 0"),
        ("server", 'tls-sans:\n  - "a"\n', "closest known flag: tls-san"),
        ("server", "key: [a, b]\n", "is not a quoted string"),
    ],
)
def test_the_node_checker_refuses(checker, tmp_path, command, text, message):
    result = run_checker(checker, command, text, tmp_path)
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_the_node_checker_usage(checker, tmp_path):
    assert run_checker(checker, "etcd", "", tmp_path).returncode == 2
