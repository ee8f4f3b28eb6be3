# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The converged cloudflared connector on cf-node (molecule/cloudflared_node), checked with pytest-testinfra.

Only the lab's placeholder package is installed (cloudflared cannot be downloaded here), so cloudflared-node.service
is written and verified but never started: the tests show the files, the modes, the unit, the credential detection
for both token forms, and that refused rule sets change nothing and restart nothing. converge.yml is run again
with other inputs through --extra-vars.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

testinfra_hosts = ["cf-node"]

SCENARIO = Path(__file__).resolve().parents[1]
CONFIG = "/etc/cloudflared/config.yaml"
UNIT = "/etc/systemd/system/cloudflared-node.service"


@pytest.fixture(name="lab_vars", scope="module")
def fixture_lab_vars(host):
    return host.backend.get_variables()


@pytest.fixture(name="credentials_path", scope="module")
def fixture_credentials_path(lab_vars):
    return f"/etc/cloudflared/{lab_vars['cf_test_tunnel_id']}.json"


def converge_with(request, tmp_path: Path, extra: dict, options: tuple = (), succeed: bool = True) -> str:
    inventory = request.config.getoption("ansible_inventory")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    argv = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "--inventory",
        inventory,
        str(SCENARIO / "converge.yml"),
        "--extra-vars",
        "@" + str(tmp_path / "extra.json"),
        *options,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600, env=os.environ.copy())
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == succeed, output[-3000:]
    return " ".join(output.split())


def file_state(host, path: str) -> tuple:
    return host.file(path).sha256sum, host.run("stat -c %%.9Y/%%.9Z %s", path).stdout.strip()


def unit_state(host) -> dict:
    out = host.run(
        "systemctl show cloudflared-node.service --property=ActiveState,InvocationID,NRestarts,ExecMainStartTimestampMonotonic"
    )
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


# --- What the converge left ---------------------------------------------------------------------------------------
def test_the_pinned_placeholder_package_is_installed_and_says_what_it_is(host):
    defaults = yaml.safe_load(
        (SCENARIO.parents[1] / "roles/cloudflared_node/defaults/main.yml").read_text(encoding="utf-8")
    )
    assert host.package("cloudflared").version == defaults["cloudflared_node_version"]
    version = host.run("/usr/bin/cloudflared --version")
    assert version.rc == 0 and "placeholder: NOT cloudflared" in version.stdout
    assert host.run("/usr/bin/cloudflared tunnel run").rc == 1


def test_config_yaml_routes_gpu_to_triton_and_ends_with_the_catch_all(host, lab_vars, credentials_path):
    config = host.file(CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "cloudflared", 0o640)
    assert yaml.safe_load(config.content_string) == {
        "tunnel": lab_vars["cf_test_tunnel_id"],
        "credentials-file": credentials_path,
        "protocol": "auto",
        "loglevel": "info",
        "ingress": [
            {"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"},
            {"service": "http_status:404"},
        ],
    }


def test_directory_0750_and_credentials_0600_owned_by_cloudflared(host, lab_vars, credentials_path):
    directory = host.file("/etc/cloudflared")
    assert directory.is_directory and (directory.user, directory.group, directory.mode) == (
        "root",
        "cloudflared",
        0o750,
    )
    credentials = host.file(credentials_path)
    assert (credentials.user, credentials.group, credentials.mode) == ("cloudflared", "cloudflared", 0o600)
    assert json.loads(credentials.content_string) == {
        "AccountTag": lab_vars["cf_test_account_tag"],
        "Endpoint": "",
        "TunnelID": lab_vars["cf_test_tunnel_id"],
        "TunnelSecret": lab_vars["cf_test_tunnel_secret"],
    }
    user = host.user("cloudflared")
    assert user.exists and user.uid < 1000 and user.shell == "/usr/sbin/nologin"


def test_no_cert_pem_on_the_node(host):
    found = host.run("find / -xdev -name cert.pem -path '*cloudflare*' 2>/dev/null")
    assert found.stdout.strip() == ""


def test_the_unit_verifies_runs_the_seeds_command_and_is_not_started(host):
    unit = host.file(UNIT)
    assert unit.mode == 0o644
    lines = dict(
        line.split("=", 1) for line in unit.content_string.splitlines() if "=" in line and not line.startswith("#")
    )
    assert lines["ExecStart"] == (
        "/usr/bin/cloudflared --no-autoupdate --config /etc/cloudflared/config.yaml --metrics 127.0.0.1:20241 tunnel run"
    )
    assert lines["Restart"] == "on-failure" and lines["User"] == "cloudflared"
    verify = host.run("systemd-analyze verify --man=no %s", UNIT)
    assert verify.rc == 0, verify.stderr
    service = host.service("cloudflared-node")
    assert not service.is_enabled and not service.is_running  # the lab has only the placeholder: never started
    assert unit_state(host)["InvocationID"] == ""  # never started since boot


# --- The other token form: same tunnel, same credentials, nothing changes ---------------------------------------
@pytest.mark.parametrize("form", ["credentials_json_base64", "credentials_json"])
def test_the_other_token_forms_change_nothing(request, tmp_path, host, lab_vars, credentials_path, form):
    before = file_state(host, credentials_path), file_state(host, CONFIG)
    token = (
        lab_vars["cf_test_credentials_json_base64"]
        if form == "credentials_json_base64"
        else json.dumps(
            {
                "AccountTag": lab_vars["cf_test_account_tag"],
                "TunnelSecret": lab_vars["cf_test_tunnel_secret"],
                "TunnelID": lab_vars["cf_test_tunnel_id"],
            }
        )
    )
    output = converge_with(request, tmp_path, {"cloudflared_node_tunnel_token": token})
    assert f"token given as {form}" in output
    assert "cf-node : ok=" in output and " changed=0 " in output.split("cf-node : ok=")[1][:40]
    assert (file_state(host, credentials_path), file_state(host, CONFIG)) == before
    assert lab_vars["cf_test_tunnel_secret"] not in output and token not in output


# --- Refused inputs: the validator's message, config.yaml unchanged, no restart ----------------------------------
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {
                "cloudflared_node_ingress": [{"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"}],
                "cloudflared_node_ingress_catch_all": "",
            },
            "Rule #1: The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)",
        ),
        (
            {"cloudflared_node_ingress": [{"hostname": "gpu.oceanid.example", "service": "http://localhost:8000/api"}]},
            "Rule #1: http://localhost:8000/api is an invalid address, ingress rules don't support proxying to a different"
            " path on the origin service",
        ),
    ],
    ids=["no-catch-all-last", "service-url-with-a-path"],
)
def test_refused_rules_keep_the_config_and_restart_nothing(request, tmp_path, host, credentials_path, extra, message):
    before = file_state(host, CONFIG), file_state(host, credentials_path), unit_state(host)
    output = converge_with(request, tmp_path, extra, succeed=False)
    assert "cf-node: the ingress rules" in output and "fail validation, nothing was changed" in output
    assert message in output
    assert "RUNNING HANDLER" not in output  # no restart was even notified
    assert (file_state(host, CONFIG), file_state(host, credentials_path), unit_state(host)) == before


def test_a_cert_pem_on_the_node_is_refused(request, tmp_path, host):
    host.run("install -m 0600 /dev/null /etc/cloudflared/cert.pem")
    try:
        before = file_state(host, CONFIG)
        output = converge_with(request, tmp_path, {}, succeed=False)
        assert "cf-node: found /etc/cloudflared/cert.pem: a cert.pem is the account-wide origin certificate" in output
        assert file_state(host, CONFIG) == before and host.file("/etc/cloudflared/cert.pem").exists
    finally:
        host.run("rm -f /etc/cloudflared/cert.pem")


def test_no_secret_appears_at_vvv(request, tmp_path, lab_vars):
    output = converge_with(request, tmp_path, {}, options=("--check", "-vvv"))
    assert "cf-node" in output and "cloudflared_node" in output
    for secret in ("cf_test_tunnel_secret", "cf_test_tunnel_token", "cf_test_credentials_json_base64"):
        assert lab_vars[secret] not in output, secret
