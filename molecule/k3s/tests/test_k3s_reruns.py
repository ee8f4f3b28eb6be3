# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""molecule/k3s's converge.yml run again with other inputs (through --extra-vars), once for the whole scenario, seen
from the first server: a second converge keeps the join token and changes nothing, a wrong checksum is refused (url and
local) with the binary kept, and refused inputs (an unknown key, a token change without k3s_token_rotate, a host in
both groups) fail before anything is written. k3s itself never runs (placeholder artifacts).
"""

from __future__ import annotations

import pytest
import yaml
from k3s_nodes import CONFIG, TOKEN, converge_with, ephemeral, file_state

testinfra_hosts = ["k3s-s1"]


def test_a_second_converge_keeps_the_token_and_changes_nothing(request, tmp_path, host):
    kept = ephemeral() / "k3s-token"
    before = kept.read_bytes(), kept.stat().st_mtime_ns, file_state(host, TOKEN)
    output = converge_with(request, tmp_path, {})
    for node in ("k3s-s1", "k3s-s2", "k3s-a1"):
        assert " changed=0 " in output.split(f"{node} : ok=")[1][:40], output[-3000:]
    assert "join token: kept on the controller in" in output
    assert (kept.read_bytes(), kept.stat().st_mtime_ns, file_state(host, TOKEN)) == before
    assert kept.read_text(encoding="utf-8").strip() not in output


@pytest.mark.parametrize("method", ["url", "local"])
def test_a_wrong_checksum_is_refused_and_the_binary_kept(request, tmp_path, host, method):
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
def test_bad_input_fails_preflight_and_changes_nothing(request, tmp_path, host, extra, messages):
    before = file_state(host, CONFIG), file_state(host, TOKEN), (ephemeral() / "k3s-token").read_bytes()
    output = converge_with(request, tmp_path, extra, succeed=False)
    for message in messages:
        assert message in output
    assert "Write config.yaml" not in output and "another-token-0123456789" not in output
    assert (file_state(host, CONFIG), file_state(host, TOKEN), (ephemeral() / "k3s-token").read_bytes()) == before


def test_a_host_in_both_groups_fails_preflight(request, tmp_path, host):
    both = tmp_path / "both.yml"
    both.write_text(yaml.safe_dump({"k3s_agents": {"hosts": {"k3s-s2": None}}}), encoding="utf-8")
    before = file_state(host, CONFIG)
    output = converge_with(request, tmp_path, {}, inventories=(both,), succeed=False)
    assert "k3s-s2: is in both k3s_server_group (k3s_servers) and k3s_agent_group (k3s_agents)" in output
    assert file_state(host, CONFIG) == before
