# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cloudflare Access at the edge in front of a real Triton, with the adapter on the other side.

The Cloudflare API emulator (tests/support/cloudflare_emulator.py) holds the service token and the Access
application that our modules create (oceanid.fleet.cloudflare_access_service_token and
cloudflare_access_application, run by ansible-playbook against the emulator's URL); AccessEdgeProxy stands in for
Access at the edge (it admits what the emulated application admits, else 403 like Access) in front of the
tritonserver the other adapter tests use. Cloudflare itself is not here: this is an emulator, not Access.
"""

from __future__ import annotations

import base64
import os

import pytest

from tests.integration.ls_triton_adapter.adapter_helpers import MODEL
from tests.support import tritonserver
from tests.support.ansible_env import run_local_play
from tests.support.cloudflare_emulator import AccessEdgeProxy, CloudflareEmulator
from tests.support.pdf import make_pdf

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the tritonserver support installs a .pth hook into the system Python (root)"
    ),
    pytest.mark.skipif(
        not tritonserver.available(), reason="no tritonserver binary (nvidia-pytriton wheel) in this venv"
    ),
]

HOSTNAME = "gpu.oceanid.example"
TOKEN_NAME = "ls-triton-adapter"
PAGES = ["MV Edge Runner IMO 9234567"]
PDF64 = base64.b64encode(make_pdf(PAGES)).decode("ascii")


def token_and_app(workdir, emulator: CloudflareEmulator, state: str = "present") -> dict[str, str]:
    """Run our modules against the emulator; the credentials come back through the module's 0600 secret_file."""
    auth = {"api_token": emulator.api_token, "api_base_url": emulator.url, "account_id": emulator.account_id}
    secret_file = workdir / f"token-{state}.env"
    result = run_local_play(
        workdir,
        "service token and Access application",
        [
            {
                "oceanid.fleet.cloudflare_access_service_token": {
                    "name": TOKEN_NAME,
                    "state": state,
                    "secret_file": str(secret_file),
                    **auth,
                },
                "no_log": True,
            },
            {
                "oceanid.fleet.cloudflare_access_application": {
                    "name": f"oceanid {HOSTNAME}",
                    "domain": HOSTNAME,
                    "service_tokens": [TOKEN_NAME],
                    **auth,
                }
            },
        ],
    )
    assert result.rc == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    lines = dict(line.split("=", 1) for line in secret_file.read_text().splitlines() if "=" in line)
    return {
        "CF_ACCESS_CLIENT_ID": lines["CF_ACCESS_CLIENT_ID"],
        "CF_ACCESS_CLIENT_SECRET": lines["CF_ACCESS_CLIENT_SECRET"],
    }


@pytest.fixture(name="edge", scope="module")
def fixture_edge(triton, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("edge")
    with CloudflareEmulator() as emulator, AccessEdgeProxy(triton.url, emulator, HOSTNAME) as proxy:
        credentials = token_and_app(workdir, emulator)
        yield emulator, proxy, credentials, workdir


def test_the_service_token_passes_access_and_predict_answers(edge, start_adapter):
    emulator, proxy, credentials, _workdir = edge
    assert emulator.access_allows(
        HOSTNAME,
        {
            "CF-Access-Client-Id": credentials["CF_ACCESS_CLIENT_ID"],
            "CF-Access-Client-Secret": credentials["CF_ACCESS_CLIENT_SECRET"],
        },
    )
    forwarded = proxy.forwarded
    adapter = start_adapter(proxy.url, **credentials)
    health = adapter.call("GET", "/health")[1]["triton"]
    assert health["ready"] is True and health["model_ready"] is True
    status, body = adapter.call("POST", "/predict", {"pdf_base64": PDF64})[:2]
    assert status == 200, body
    assert body["text"] == PAGES[0]
    assert adapter.call("POST", "/setup", {"project": "1.1"})[1] == {"model_version": f"{MODEL}:1"}
    assert proxy.forwarded > forwarded
    log = adapter.log()
    assert credentials["CF_ACCESS_CLIENT_SECRET"] not in log


def test_without_the_token_access_refuses_and_the_adapter_says_so(edge, start_adapter):
    proxy = edge[1]
    refused = proxy.refused
    adapter = start_adapter(proxy.url)
    assert adapter.call("GET", "/health")[1]["triton"]["ready"] is False  # /health stays 200 for Label Studio
    status, body = adapter.call("POST", "/predict", {"pdf_base64": PDF64})[:2]
    assert status == 502, body
    assert "refused the inference with HTTP 403" in body["detail"], body
    assert "no service token is configured" in body["detail"], body
    assert proxy.refused > refused


def test_a_rotated_away_secret_is_refused_and_the_new_one_admitted(edge, start_adapter):
    emulator, proxy, old, workdir = edge
    new = token_and_app(workdir, emulator, state="rotated")
    assert new["CF_ACCESS_CLIENT_ID"] == old["CF_ACCESS_CLIENT_ID"]
    assert new["CF_ACCESS_CLIENT_SECRET"] != old["CF_ACCESS_CLIENT_SECRET"]
    stale = start_adapter(proxy.url, **old)
    status, body = stale.call("POST", "/predict", {"pdf_base64": PDF64})[:2]
    assert status == 502, body
    assert "refused the inference with HTTP 403" in body["detail"], body
    assert "service token (CF_ACCESS_CLIENT_ID/SECRET) was not admitted" in body["detail"], body
    assert old["CF_ACCESS_CLIENT_SECRET"] not in stale.log()
    fresh = start_adapter(proxy.url, **new)
    status, body = fresh.call("POST", "/predict", {"pdf_base64": PDF64})[:2]
    assert status == 200 and body["text"] == PAGES[0], body
