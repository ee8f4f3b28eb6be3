# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Cloudflare edge layer of site.yml (playbooks/edge.yml) as converged against the Cloudflare API emulator.

prepare.yml started the emulator (tests/support/cloudflare_emulator.py: an emulator, not Cloudflare) on the
controller; converge ran the edge layer through its proxy (https://api.cloudflare.com over verified TLS with a
test CA). Here: what the emulator holds, what the adapter on ls-tethys and cloudflared_node on ls-calypso got, then
one rotation run at -vvv that must change the adapter's credentials and nothing else and leak no secret.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import testinfra

testinfra_hosts = ["ls-tethys"]

SCENARIO = Path(__file__).resolve().parents[1]
EDGE_PLAYBOOK = SCENARIO.parents[1] / "playbooks" / "edge.yml"
EMULATOR_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "cloudflare-emulator"
HOSTNAME = "gpu.oceanid.example"
CF_FILE = "/etc/ls-triton-adapter/cf-access.env"
STATE: dict = {}


@pytest.fixture(name="emulator", scope="module")
def fixture_emulator() -> dict:
    info = json.loads((EMULATOR_DIR / "port.json").read_text(encoding="utf-8"))
    # The emulator's own store (standing in for Cloudflare's side): 0600, the one controller file with secrets.
    assert oct((EMULATOR_DIR / "state.json").stat().st_mode & 0o777) == "0o600"
    info["api_token"] = json.loads((EMULATOR_DIR / "state.json").read_text(encoding="utf-8"))["api_token"]
    return info


def emulator_get(emulator: dict, path: str, headers: dict | None = None) -> tuple[int, object]:
    request = urllib.request.Request(emulator["base"] + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def access(emulator: dict, client_id: str, secret: str) -> int:
    headers = {"CF-Access-Client-Id": client_id, "CF-Access-Client-Secret": secret} if client_id else {}
    return emulator_get(emulator, f"/__emulator__/access?hostname={HOSTNAME}", headers)[0]


def credentials(host) -> dict[str, str]:
    text = host.file(CF_FILE).content_string
    values = dict(re.findall(r'^(CF_ACCESS_CLIENT_(?:ID|SECRET))="((?:[^"\\]|\\.)*)"$', text, re.M))
    assert set(values) == {"CF_ACCESS_CLIENT_ID", "CF_ACCESS_CLIENT_SECRET"}, "the file holds both, once"
    return values


def adapter_pid(host) -> str:
    return host.run("systemctl show --property=MainPID --value ls-triton-adapter.service").stdout.strip()


def adapter_health(host) -> dict:
    script = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=5).read().decode())"
    for _attempt in range(30):
        result = host.run("python3 -c %s", script)
        if result.rc == 0:
            return json.loads(result.stdout)
        time.sleep(1)
    raise AssertionError(f"ls-triton-adapter did not answer /health: {result.stderr}")


# --- What the converge left ---------------------------------------------------------------------------------------
def test_the_adapter_holds_exactly_the_emulators_token_in_a_0600_file(host, emulator):
    cf_file = host.file(CF_FILE)
    assert (cf_file.user, cf_file.group, cf_file.mode) == ("root", "root", 0o600)
    values = credentials(host)
    tokens = emulator_get(emulator, "/__emulator__/state")[1]["service_tokens"]
    assert [token["client_id"] for token in tokens] == [values["CF_ACCESS_CLIENT_ID"]]
    assert access(emulator, values["CF_ACCESS_CLIENT_ID"], values["CF_ACCESS_CLIENT_SECRET"]) == 200
    assert access(emulator, values["CF_ACCESS_CLIENT_ID"], values["CF_ACCESS_CLIENT_SECRET"] + "x") == 403
    # the settings file does not carry the token (a run without one must not erase it)
    assert "CF_ACCESS" not in host.file("/etc/ls-triton-adapter/env").content_string
    unit = host.file("/etc/systemd/system/ls-triton-adapter.service").content_string
    assert f"EnvironmentFile=-{CF_FILE}" in unit


def test_one_tunnel_per_gpu_host_the_proxied_cname_and_an_access_app_admitting_only_the_token(host, emulator):
    state = emulator_get(emulator, "/__emulator__/state")[1]
    tunnels = [tunnel for tunnel in state["tunnels"] if not tunnel.get("deleted_at")]
    assert [tunnel["name"] for tunnel in tunnels] == ["oceanid-ls-calypso"]
    records = [(r["name"], r["type"], r["content"], r["proxied"]) for r in state["dns_records"]]
    assert records == [(HOSTNAME, "CNAME", f"{tunnels[0]['id']}.cfargotunnel.com", True)]
    assert [app["domain"] for app in state["access_apps"]] == [HOSTNAME]
    assert access(emulator, "", "") == 403  # nobody without the service token
    assert access(emulator, "someone-else.access", "nope") == 403


def test_cloudflared_node_got_its_tunnel_and_the_ingress_to_triton(host, request, emulator):
    calypso = testinfra.get_host(
        "ansible://ls-calypso?ansible_inventory=" + request.config.getoption("ansible_inventory"), sudo=True
    )
    state = emulator_get(emulator, "/__emulator__/state")[1]
    tunnel_id = [t["id"] for t in state["tunnels"] if not t.get("deleted_at")][0]
    config = calypso.file("/etc/cloudflared/config.yaml").content_string
    assert f"tunnel: {tunnel_id}" in config or f'tunnel: "{tunnel_id}"' in config, config
    assert HOSTNAME in config and "http://localhost:8000" in config and "http_status:404" in config
    credentials_file = calypso.file(f"/etc/cloudflared/{tunnel_id}.json")
    assert credentials_file.mode == 0o600 and credentials_file.user == "cloudflared"
    assert not calypso.file("/etc/cloudflared/cert.pem").exists


def task_results(output: str) -> list[tuple[str, str]]:
    """(task or handler name, status) for each host's result line of the default callback's output, in order."""
    results, task = [], None
    for line in output.splitlines():
        match = re.match(r"^(?:TASK|RUNNING HANDLER) \[(?:[^\]:]+ : )?(.*)\] \**$", line)
        if match:
            task = match.group(1)
        else:
            status = re.match(r"^(ok|changed|skipping|fatal): \[", line)
            if status:
                results.append((task, status.group(1)))
    return results


def changed_tasks(output: str) -> list[str]:
    changed = []
    for task, status in task_results(output):
        if status == "changed" and task not in changed:
            changed.append(task)
    return changed


def run_edge(request, *options: str) -> str:
    argv = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "--inventory",
        request.config.getoption("ansible_inventory"),
        str(EDGE_PLAYBOOK),
        *options,
    ]
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "false", "ANSIBLE_NOCOLOR": "true"}  # molecule forces colour
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600, env=env)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, output[-4000:]
    return output


def test_a_plain_rerun_changes_nothing_and_delivers_no_secret(host, request):
    before = host.file(CF_FILE).content_string
    output = run_edge(request)
    assert changed_tasks(output) == []
    assert ("Deliver the credentials when Cloudflare returned a secret", "skipping") in task_results(output)
    assert host.file(CF_FILE).content_string == before


# --- A rotation at -vvv ---------------------------------------------------------------------------------------------
@pytest.fixture(name="rotation", scope="module")
def fixture_rotation(host, request, emulator):
    before = credentials(host)
    pid = adapter_pid(host)
    started = time.monotonic()
    output = run_edge(request, "--extra-vars", "fleet_cloudflare_rotate_service_token=true", "-vvv")
    return {"before": before, "pid": pid, "output": output, "seconds": time.monotonic() - started}


def test_a_rotation_changes_the_adapters_credentials_and_nothing_else(host, emulator, rotation):
    assert changed_tasks(rotation["output"]) == [
        "Ensure the adapter's Access service token",
        "Write the Cloudflare Access credentials file",
        "Restart ls-triton-adapter",
    ]
    after = credentials(host)
    before = rotation["before"]
    assert after["CF_ACCESS_CLIENT_ID"] == before["CF_ACCESS_CLIENT_ID"]
    assert after["CF_ACCESS_CLIENT_SECRET"] != before["CF_ACCESS_CLIENT_SECRET"]
    assert access(emulator, after["CF_ACCESS_CLIENT_ID"], after["CF_ACCESS_CLIENT_SECRET"]) == 200
    assert access(emulator, before["CF_ACCESS_CLIENT_ID"], before["CF_ACCESS_CLIENT_SECRET"]) == 403
    assert adapter_pid(host) not in ("0", rotation["pid"]), "the adapter was not restarted"
    assert adapter_health(host)["status"] == "UP"
    STATE["secrets"] = {
        "old client secret": before["CF_ACCESS_CLIENT_SECRET"],
        "new client secret": after["CF_ACCESS_CLIENT_SECRET"],
    }


def test_no_secret_in_the_vvv_output_nor_in_any_file_but_the_0600_ones_meant_for_them(
    host, request, emulator, rotation
):
    assert "secrets" in STATE, "runs after the rotation test"
    state = emulator_get(emulator, "/__emulator__/state")[1]
    tunnel_id = [t["id"] for t in state["tunnels"] if not t.get("deleted_at")][0]
    status, document = emulator_get(
        emulator,
        f"/client/v4/accounts/{emulator['account_id']}/cfd_tunnel/{tunnel_id}/token",
        {"Authorization": "Bearer " + emulator["api_token"]},
    )
    assert status == 200
    tunnel_token = document["result"]
    tunnel_secret = json.loads(base64.b64decode(tunnel_token + "=" * (-len(tunnel_token) % 4)))["s"]
    secrets = {
        **STATE["secrets"],
        "tunnel token": tunnel_token,
        "tunnel secret": tunnel_secret,
        "API token": emulator["api_token"],
    }
    output = rotation["output"]
    assert "ls-tethys" in output and "cloudflare_access_service_token" in output
    assert [name for name, secret in secrets.items() if secret in output] == []

    # The lab hosts' /etc and /var/log (the journal included): only the 0600 files meant for them. The patterns go
    # to the host in a 0600 file under /run by the copy module (whose content is no_log, so not in the journal).
    calypso = testinfra.get_host(
        "ansible://ls-calypso?ansible_inventory=" + request.config.getoption("ansible_inventory"), sudo=True
    )
    allowed = {
        "ls-tethys": {CF_FILE},
        "ls-calypso": {f"/etc/cloudflared/{tunnel_id}.json"},
    }
    for name, lab_host in (("ls-tethys", host), ("ls-calypso", calypso)):
        patterns = "/run/oceanid-secret-patterns"
        content = "".join(secret + "\n" for secret in secrets.values())
        lab_host.ansible(
            "ansible.builtin.copy",
            json.dumps({"dest": patterns, "mode": "0600", "content": content}),
            check=False,
            become=True,
        )
        try:
            found = lab_host.run(f"grep -rlF -f {patterns} /etc /var/log").stdout.split()
        finally:
            lab_host.run(f"rm -f {patterns}")
        assert set(found) <= allowed[name], (name, found)
        for path in set(found):
            assert lab_host.file(path).mode == 0o600, path
    # The controller's molecule ephemeral directory: only the emulator's own 0600 store.
    ephemeral = EMULATOR_DIR.parent
    leaking = [
        str(path)
        for path in ephemeral.rglob("*")
        if path.is_file() and path != EMULATOR_DIR / "state.json"
        for secret in secrets.values()
        if secret.encode() in path.read_bytes()
    ]
    assert leaking == []
