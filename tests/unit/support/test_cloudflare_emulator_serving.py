# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the Cloudflare emulator is reached: the state file, the ``serve`` CLI and its /__emulator__ endpoints,
HTTPS through CONNECT with the test CA (ansible's open_url and make_context, certificate validation on), and the
AccessEdgeProxy standing in for Access at the edge."""

from __future__ import annotations

import http.server
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.cloudflare_emulator import AccessEdgeProxy, CloudflareEmulator

REPO = Path(__file__).resolve().parents[3]


def post(emu, path, body):
    request = urllib.request.Request(
        emu.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {emu.api_token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["result"]


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_state_file_round_trip(tmp_path):
    state_file = tmp_path / "state" / "cloudflare.json"
    with CloudflareEmulator(state_file=state_file) as emu:
        token = post(emu, f"/accounts/{emu.account_id}/access/service_tokens", {"name": "adapter"})
        tunnel = post(emu, f"/accounts/{emu.account_id}/cfd_tunnel", {"name": "gpu", "config_src": "cloudflare"})
        first = emu.state()
        identity = (emu.account_id, emu.zone_id, emu.api_token, emu.ca.ca_pem)
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert not list(state_file.parent.glob(".*.tmp"))
    with CloudflareEmulator(state_file=state_file) as again:
        assert (again.account_id, again.zone_id, again.api_token, again.ca.ca_pem) == identity
        assert again.state() == first
        assert [t["id"] for t in again.state()["tunnels"]] == [tunnel["id"]]
        headers = {"CF-Access-Client-Id": token["client_id"], "CF-Access-Client-Secret": token["client_secret"]}
        app = {"type": "self_hosted", "name": "gpu", "domain": "gpu.oceanid.example"}
        app["policies"] = [
            {"name": "adapter", "decision": "non_identity", "include": [{"service_token": {"token_id": token["id"]}}]}
        ]
        post(again, f"/accounts/{again.account_id}/access/apps", app)
        assert again.access_allows("gpu.oceanid.example", headers)  # the secret survived the restart


def test_https_through_the_proxy_with_ansible_open_url(tmp_path):
    code = r"""
import json, os, ssl
from ansible.module_utils.urls import open_url, make_context
context = make_context()
assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
response = open_url("https://api.cloudflare.com/client/v4/zones?name=oceanid.example",
                    headers={"Authorization": "Bearer " + os.environ["CF_TEST_TOKEN"]})
print(response.status, json.loads(response.read())["result"][0]["name"])
"""
    with CloudflareEmulator() as emu:
        env = dict(os.environ, **emu.proxy_env(tmp_path), CF_TEST_TOKEN=emu.api_token)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["200", "oceanid.example"]
        assert emu.requests[-1]["path"] == "/zones"
        # without the test CA the same request fails certificate validation
        env.pop("SSL_CERT_FILE")
        env.pop("REQUESTS_CA_BUNDLE")
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out.stderr


def _wait_for(path: Path, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear")


def _serve(tmp_path, state_file):
    port_file = tmp_path / f"port-{time.monotonic_ns()}.json"
    command = [sys.executable, "-m", "tests.support.cloudflare_emulator", "serve"]
    command += ["--state-file", str(state_file), "--port-file", str(port_file)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        return process, _wait_for(port_file)
    except AssertionError:
        process.kill()
        raise


def _stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    output, _stderr = process.communicate(timeout=20)
    assert process.returncode == 0, output
    return output


def test_serve_cli_keeps_objects_across_restarts(tmp_path):
    state_file = tmp_path / "state.json"
    process, info = _serve(tmp_path, state_file)
    try:
        credentials = json.loads(state_file.read_text())
        token = credentials["api_token"]
        request = urllib.request.Request(
            info["url"] + f"/accounts/{info['account_id']}/cfd_tunnel",
            data=json.dumps({"name": "gpu", "config_src": "cloudflare"}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            tunnel = json.loads(response.read())["result"]
        status, body = get(info["base"] + "/__emulator__/state")
        assert status == 200 and [t["id"] for t in json.loads(body)["tunnels"]] == [tunnel["id"]]
        status, pem = get(info["base"] + "/__emulator__/ca.pem")
        assert status == 200 and pem == Path(info["ca_pem"]).read_bytes() and pem.startswith(b"-----BEGIN")
        status, body = get(info["base"] + "/__emulator__/access?hostname=gpu.oceanid.example")
        assert (status, json.loads(body)["allowed"]) == (200, True)  # no Access application yet
    finally:
        output = _stop(process)
    assert token not in output and tunnel["credentials_file"]["TunnelSecret"] not in output
    process, info2 = _serve(tmp_path, state_file)
    try:
        status, body = get(info2["base"] + "/__emulator__/state")
        assert [t["id"] for t in json.loads(body)["tunnels"]] == [tunnel["id"]]
        assert info2["account_id"] == info["account_id"]
        assert Path(info2["ca_pem"]).read_bytes() == Path(info["ca_pem"]).read_bytes()
    finally:
        _stop(process)


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Origin.seen.append((self.path, self.headers.get("Host"), body))
        answer = json.dumps({"model_name": "m", "outputs": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def origin():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    _Origin.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("by_url", [False, True])
def test_access_edge_proxy(origin, by_url):
    with CloudflareEmulator() as emu:
        token = post(emu, f"/accounts/{emu.account_id}/access/service_tokens", {"name": "adapter"})
        app = {"type": "self_hosted", "name": "gpu", "domain": "gpu.oceanid.example"}
        app["policies"] = [
            {"name": "adapter", "decision": "non_identity", "include": [{"service_token": {"token_id": token["id"]}}]}
        ]
        post(emu, f"/accounts/{emu.account_id}/access/apps", app)
        with AccessEdgeProxy(origin, emu.url if by_url else emu, "gpu.oceanid.example") as edge:
            url = edge.url + "/v2/models/m/infer"
            good = {"CF-Access-Client-Id": token["client_id"], "CF-Access-Client-Secret": token["client_secret"]}
            for headers, expected in ((good, 200), ({}, 403), (dict(good, **{"CF-Access-Client-Secret": "x"}), 403)):
                request = urllib.request.Request(url, data=b'{"inputs": []}', method="POST", headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status = response.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                assert status == expected, headers
            assert (edge.forwarded, edge.refused) == (1, 2)
    assert _Origin.seen == [("/v2/models/m/infer", "gpu.oceanid.example", b'{"inputs": []}')]
