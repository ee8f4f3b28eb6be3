# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.cloudflare_tunnel in ansible-playbook against the Cloudflare emulator (tests/support/
cloudflare_emulator.py, never the real API), reached at the module's default endpoint https://api.cloudflare.com
through HTTPS_PROXY over verified TLS: create and re-run, the token decodable to the same tunnel, remote ingress put
once, bad ingress refused before any request, absent with live connections, check mode, nothing secret at -vvv."""

from __future__ import annotations

import base64
import json

from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_credentials import parse_tunnel_credentials

INGRESS = [
    {"hostname": "gpu.oceanid.example", "service": "http://localhost:8000", "originRequest": {"connectTimeout": 30}},
    {"service": "http_status:404"},
]


def tunnel(emulator, name="calypso", **args) -> tuple[str, dict]:
    return "cloudflare_tunnel", {
        "name": name,
        "account_id": emulator.account_id,
        "api_token": emulator.api_token,
        **args,
    }


def writes(emulator, since: int) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emulator.requests[since:] if r["method"] != "GET"]


def tunnels(emulator, name="calypso", deleted=False) -> list[dict]:
    return [t for t in emulator.state()["tunnels"] if t["name"] == name and bool(t["deleted_at"]) == deleted]


def ok(result: dict) -> dict:
    assert result.get("failed") is not True, result.get("msg", result)
    return result


def test_create_then_unchanged_and_the_token_is_this_tunnels(emulator, cf_play):
    first = ok(cf_play([tunnel(emulator)])[0])
    assert first["changed"] is True
    [created] = tunnels(emulator)
    assert created["config_src"] == "local"
    assert first["tunnel_id"] == created["id"]
    assert first["cname_target"] == f"{created['id']}.cfargotunnel.com"
    assert first["diff"] == {"before": {}, "after": {"name": "calypso", "config_src": "local"}}
    assert [write[0] for write in writes(emulator, 0)] == ["POST"]

    credentials = parse_tunnel_credentials(first["tunnel_token"])
    assert credentials["form"] == "tunnel_token"
    assert credentials["tunnel_id"] == created["id"]
    assert credentials["account_tag"] == emulator.account_id
    secret = credentials["credentials"]["TunnelSecret"]
    assert len(base64.b64decode(secret)) == 32
    assert secret not in json.dumps({k: v for k, v in first.items() if k != "tunnel_token"})

    mark = len(emulator.requests)
    second = ok(cf_play([tunnel(emulator)])[0])
    assert second["changed"] is False
    assert second["tunnel_id"] == created["id"] and second["tunnel_token"] == first["tunnel_token"]
    assert writes(emulator, mark) == []
    assert len(tunnels(emulator)) == 1


def test_remote_ingress_put_once_then_unchanged(emulator, cf_play):
    args = {"config_src": "cloudflare", "ingress": INGRESS}
    first = ok(cf_play([tunnel(emulator, "remote", **args)])[0])
    assert first["changed"] is True
    tunnel_id = first["tunnel_id"]
    base = f"/accounts/{emulator.account_id}/cfd_tunnel"
    assert writes(emulator, 0) == [("POST", base), ("PUT", f"{base}/{tunnel_id}/configurations")]
    [remote] = tunnels(emulator, "remote")
    assert remote["config_src"] == "cloudflare"
    assert remote["configurations"]["config"]["ingress"] == INGRESS
    version = remote["configurations"]["version"]
    assert first["diff"]["after"]["ingress"] == INGRESS

    mark = len(emulator.requests)
    second = ok(cf_play([tunnel(emulator, "remote", **args)])[0])
    assert second["changed"] is False
    assert writes(emulator, mark) == []
    [remote] = tunnels(emulator, "remote")
    assert remote["configurations"]["version"] == version

    changed = [{**INGRESS[0], "service": "http://localhost:8001"}, INGRESS[1]]
    third = ok(cf_play([tunnel(emulator, "remote", config_src="cloudflare", ingress=changed)])[0])
    assert third["changed"] is True
    assert third["diff"]["before"]["ingress"] == INGRESS and third["diff"]["after"]["ingress"] == changed
    assert writes(emulator, mark) == [("PUT", f"{base}/{tunnel_id}/configurations")]
    [remote] = tunnels(emulator, "remote")
    assert remote["configurations"]["version"] == version + 1


def test_bad_ingress_is_refused_before_any_request(emulator, cf_play):
    bad = [
        {"hostname": "gpu.oceanid.example", "service": "http://localhost:8000/v2"},
        {"hostname": "other.oceanid.example", "service": "http://localhost:8001"},
    ]
    mark = len(emulator.requests)
    result = cf_play([tunnel(emulator, "remote", config_src="cloudflare", ingress=bad)])[0]
    assert result["failed"] is True
    assert "Rule #1: http://localhost:8000/v2 is an invalid address" in result["msg"]
    assert "Rule #2: The last ingress rule must match all URLs" in result["msg"]
    assert emulator.requests[mark:] == []
    assert tunnels(emulator, "remote") == []


def test_absent_with_connections_cleans_them_first(emulator, cf_play):
    created = ok(cf_play([tunnel(emulator)])[0])
    emulator.connect_tunnel(created["tunnel_id"])
    [live] = tunnels(emulator)
    assert live["connections"] and live["status"] == "healthy"

    mark = len(emulator.requests)
    result = ok(cf_play([tunnel(emulator, state="absent")])[0])
    assert result["changed"] is True and result["connections_cleaned"] is True
    base = f"/accounts/{emulator.account_id}/cfd_tunnel/{created['tunnel_id']}"
    assert writes(emulator, mark) == [("DELETE", f"{base}/connections"), ("DELETE", base)]
    assert tunnels(emulator) == []
    [deleted] = tunnels(emulator, deleted=True)
    assert deleted["connections"] == []

    mark = len(emulator.requests)
    again = ok(cf_play([tunnel(emulator, state="absent")])[0])
    assert again["changed"] is False
    assert writes(emulator, mark) == []


def test_check_mode_writes_nothing(emulator, cf_play):
    created = ok(cf_play([tunnel(emulator, "probe")], check=True)[0])
    assert created["changed"] is True and created["tunnel_id"] == created["tunnel_token"] == ""
    assert writes(emulator, 0) == [] and tunnels(emulator, "probe") == []

    ok(cf_play([tunnel(emulator, "remote", config_src="cloudflare", ingress=INGRESS)])[0])
    emulator.connect_tunnel(tunnels(emulator, "remote")[0]["id"])
    mark = len(emulator.requests)
    changed = [{**INGRESS[0], "service": "http://localhost:8001"}, INGRESS[1]]
    predicted = ok(cf_play([tunnel(emulator, "remote", config_src="cloudflare", ingress=changed)], check=True)[0])
    assert predicted["changed"] is True and predicted["diff"]["after"]["ingress"] == changed
    removed = ok(cf_play([tunnel(emulator, "remote", state="absent")], check=True)[0])
    assert removed["changed"] is True
    assert writes(emulator, mark) == []
    [remote] = tunnels(emulator, "remote")
    assert remote["configurations"]["config"]["ingress"] == INGRESS and remote["connections"]


def test_nothing_secret_in_verbose_output_with_no_log(emulator, cf_play):
    """What callers do (no_log: true): at -vvv neither the token, nor its secret, nor the API token shows, for a
    run that succeeds and one that fails."""
    created = ok(cf_play([tunnel(emulator)])[0])
    secret = parse_tunnel_credentials(created["tunnel_token"])["credentials"]["TunnelSecret"]
    args = tunnel(emulator)[1]
    tasks = [
        {"name": "present", "oceanid.fleet.cloudflare_tunnel": args, "no_log": True},
        {"name": "fails", "oceanid.fleet.cloudflare_tunnel": {**args, "account_id": "0" * 32}, "no_log": True},
    ]
    result = cf_play(tasks, verbosity=3, json_output=False)
    output = result.stdout + result.stderr
    assert result.rc != 0 and "fatal: [localhost]" in output, output[-3000:]
    for value in (created["tunnel_token"], secret, emulator.api_token):
        assert value not in output
