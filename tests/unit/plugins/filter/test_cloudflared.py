# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cloudflared filters (plugins/filter/cloudflared.py) as Python functions and through a real template.

The checks themselves are tested in tests/unit/plugins/module_utils/test_cloudflared_{ingress,credentials}.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.filter.cloudflared import (
    FilterModule,
    cloudflared_credentials,
    cloudflared_ingress_errors,
)

ROOT = Path(__file__).resolve().parents[4]
ACCOUNT = "699d98642c564d2e855e9661899b7252"
TUNNEL = "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"
SECRET = base64.b64encode(os.urandom(32)).decode()
TOKEN = base64.b64encode(json.dumps({"a": ACCOUNT, "t": TUNNEL, "s": SECRET}).encode()).decode()
CONFIG = {
    "tunnel": TUNNEL,
    "credentials-file": f"/etc/cloudflared/{TUNNEL}.json",
    "ingress": [
        {"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"},
        {"service": "http_status:404"},
    ],
}


def test_every_filter_is_registered_and_documented():
    filters = FilterModule().filters()
    assert set(filters) == {"cloudflared_ingress_errors", "cloudflared_credentials"}
    for name in filters:
        doc = yaml.safe_load((ROOT / "plugins" / "filter" / f"{name}.yml").read_text())
        assert doc["DOCUMENTATION"]["name"] == name


def test_ingress_errors():
    assert cloudflared_ingress_errors(CONFIG) == []
    bad = {**CONFIG, "ingress": CONFIG["ingress"][:1]}
    assert cloudflared_ingress_errors(bad) == [
        "Rule #1: The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
    ]
    remote = {"ingress": CONFIG["ingress"], "originRequest": {"connectTimeout": 30}}
    assert cloudflared_ingress_errors(remote, "remote") == []
    assert cloudflared_ingress_errors(remote, "local") != []
    assert cloudflared_ingress_errors(CONFIG, url="http://localhost:8000") == [
        "You can't set the --url flag (or $TUNNEL_URL) when using multiple-origin ingress rules"
    ]
    with pytest.raises(AnsibleFilterError, match="source is 'json'; expected one of local, remote"):
        cloudflared_ingress_errors(CONFIG, "json")


def test_credentials():
    result = cloudflared_credentials(TOKEN)
    assert result["form"] == "tunnel_token"
    assert result["credentials"] == {"AccountTag": ACCOUNT, "TunnelSecret": SECRET, "TunnelID": TUNNEL, "Endpoint": ""}
    with pytest.raises(AnsibleFilterError) as caught:
        cloudflared_credentials("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert str(caught.value).startswith("cloudflared_credentials: this is an origin certificate (cert.pem")
    with pytest.raises(AnsibleFilterError) as caught:
        cloudflared_credentials(json.dumps({"AccountTag": ACCOUNT, "TunnelSecret": SECRET, "TunnelID": "x"}))
    assert "the tunnel id is not a UUID" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_through_a_template(tmp_path):
    """Both filters by FQCN in a play on localhost, as the cloudflared_node role uses them."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {"config": CONFIG, "token": TOKEN},
                    "tasks": [
                        {
                            "name": "Check",
                            "ansible.builtin.assert": {
                                "that": [
                                    "config | oceanid.fleet.cloudflared_ingress_errors == []",
                                    "(config | combine({'ingress': config.ingress[:1]}) "
                                    "| oceanid.fleet.cloudflared_ingress_errors | length) == 1",
                                    "(token | oceanid.fleet.cloudflared_credentials).tunnel_id == '" + TUNNEL + "'",
                                    "(config | combine({'url': 'http://localhost:8000'}) "
                                    "| oceanid.fleet.cloudflared_ingress_errors(url=none) | length) == 1",
                                ]
                            },
                            "no_log": True,
                        }
                    ],
                }
            ]
        )
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
