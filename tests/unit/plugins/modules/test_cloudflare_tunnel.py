# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloudflare_tunnel's main() against a small in-memory fake transport: argument and ingress checks before any
request, which requests each state sends, the token checked, the configuration put only when it differs, check mode
and diff. The module runs against the (strict) Cloudflare emulator in tests/integration/cloudflare/test_tunnel.py.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import cloudflare
from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_credentials import parse_tunnel_credentials
from ansible_collections.oceanid.fleet.plugins.modules import cloudflare_tunnel as module
from tests.support.cloudflare_unit import FakeCloudflareBase, run_cloudflare_module

ACCOUNT = "0123456789abcdef0123456789abcdef"
INGRESS = [{"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"}, {"service": "http_status:404"}]


class FakeTunnels(FakeCloudflareBase):
    """Just enough of /accounts/{id}/cfd_tunnel to drive the module; every request recorded."""

    def __init__(self):
        self.tunnels = []
        self.secrets = {}
        self.configs = {}
        self.connections = {}
        self.requests = []
        self.token_for = None  # tunnel id -> another tunnel's token, to test the module's check

    def add(self, name, config_src="local", connections=()):
        tunnel = {
            "id": str(uuid.uuid4()),
            "account_tag": ACCOUNT,
            "name": name,
            "created_at": "2026-12-04T00:00:00Z",
            "deleted_at": None,
            "status": "inactive",
            "tun_type": "cfd_tunnel",
            "config_src": config_src,
            "remote_config": config_src == "cloudflare",
            "connections": [],
        }
        self.tunnels.append(tunnel)
        self.secrets[tunnel["id"]] = base64.b64encode(os.urandom(32)).decode()
        self.configs[tunnel["id"]] = {"version": 0, "config": None}
        self.connections[tunnel["id"]] = list(connections)
        return tunnel

    def __call__(self, method, url, headers, data, timeout, validate_certs):
        parts_url = urlsplit(url)
        path = parts_url.path.split("/client/v4", 1)[1]
        query = {k: v[0] for k, v in parse_qs(parts_url.query).items()}
        body = json.loads(data) if data else None
        self.requests.append((method, path, body))
        parts = path.strip("/").split("/")  # accounts, id, cfd_tunnel[, tunnel id[, sub]]
        assert parts[:3] == ["accounts", ACCOUNT, "cfd_tunnel"], path
        if len(parts) == 3 and method == "GET":
            found = [
                t
                for t in self.tunnels
                if t["name"] == query.get("name", t["name"])
                and (query.get("is_deleted") != "false" or not t["deleted_at"])
            ]
            return self._ok(found, info={"page": 1, "per_page": 50, "count": len(found), "total_pages": 1})
        if len(parts) == 3 and method == "POST":
            assert set(body) <= {"name", "config_src", "tunnel_secret"}
            assert len(base64.b64decode(body["tunnel_secret"])) == 32
            tunnel = self.add(body["name"], body.get("config_src", "local"))
            self.secrets[tunnel["id"]] = body["tunnel_secret"]
            return self._ok(dict(tunnel, token=self._token(tunnel["id"])))
        tunnel = next(t for t in self.tunnels if t["id"] == parts[3])
        sub = parts[4] if len(parts) > 4 else None
        if sub is None and method == "DELETE":
            assert body == {}
            if self.connections[tunnel["id"]]:
                return self._error(400, 1022, "Cannot delete tunnel because it has active connections")
            tunnel["deleted_at"] = "2026-12-04T01:00:00Z"
            return self._ok(dict(tunnel))
        if sub == "token":
            return self._ok(self._token(self.token_for or tunnel["id"]))
        if sub == "configurations" and method == "GET":
            return self._ok(dict(self.configs[tunnel["id"]], tunnel_id=tunnel["id"], account_id=ACCOUNT))
        if sub == "configurations" and method == "PUT":
            current = self.configs[tunnel["id"]]
            current.update(version=current["version"] + 1, config=body["config"])
            return self._ok(dict(current, tunnel_id=tunnel["id"], account_id=ACCOUNT))
        if sub == "connections" and method == "GET":
            return self._ok(list(self.connections[tunnel["id"]]))
        if sub == "connections" and method == "DELETE":
            assert body == {}
            self.connections[tunnel["id"]] = []
            return self._ok(None)
        raise AssertionError("unexpected request %s %s" % (method, path))

    def _token(self, tunnel_id):
        payload = {"a": ACCOUNT, "t": tunnel_id, "s": self.secrets.get(tunnel_id, base64.b64encode(b"x" * 32).decode())}
        return base64.b64encode(json.dumps(payload).encode()).decode()


@pytest.fixture
def api(monkeypatch):
    fake = FakeTunnels()
    monkeypatch.setattr(cloudflare, "urls_transport", fake)
    return fake


def run_module(capsys, check_mode=False, diff=False, **args):
    """Run main() with these arguments; return (failed, result)."""
    args.setdefault("account_id", ACCOUNT)
    return run_cloudflare_module(module, capsys, check_mode=check_mode, diff=diff, **args)


BASE = f"/accounts/{ACCOUNT}/cfd_tunnel"


# -- arguments and ingress, before any request ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": " "}, "name must be a non-empty string"),
        (
            {"name": "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"},
            "looks like a UUID; cloudflared reads a UUID as a tunnel id",
        ),
        ({"name": "gpu", "account_id": ""}, "account_id must be a non-empty string"),
        ({"name": "gpu", "ingress": INGRESS}, "ingress and origin_request apply to config_src=cloudflare"),
        ({"name": "gpu", "origin_request": {"connectTimeout": 30}}, "apply to config_src=cloudflare"),
        (
            {"name": "gpu", "config_src": "cloudflare", "origin_request": {"connectTimeout": 30}},
            "origin_request needs ingress",
        ),
        (
            {"name": "gpu", "config_src": "cloudflare", "ingress": INGRESS[:1]},
            "the ingress configuration of tunnel 'gpu' is invalid (cloudflared's ingress validate checks, rules "
            "numbered from 1): Rule #1: The last ingress rule must match all URLs",
        ),
        (
            {
                "name": "gpu",
                "config_src": "cloudflare",
                "ingress": [{"hostname": "gpu.oceanid.example", "service": "http://localhost:8000/v2"}, INGRESS[1]],
            },
            "Rule #1: http://localhost:8000/v2 is an invalid address, ingress rules don't support proxying to a "
            "different path",
        ),
        (
            {
                "name": "gpu",
                "config_src": "cloudflare",
                "ingress": [{**INGRESS[0], "originRequest": {"connectTimeout": "30s"}}, INGRESS[1]],
            },
            "Rule #1: originRequest.connectTimeout: a duration in a remote (JSON) configuration is an integer number "
            "of seconds, got string '30s'",
        ),
        (
            {"name": "gpu", "config_src": "cloudflare", "ingress": INGRESS, "origin_request": {"noTLSVerify": "yes"}},
            "originRequest.noTLSVerify: expected a boolean (true/false), got string 'yes'",
        ),
        ({"name": "gpu", "api_token": None}, "no Cloudflare credentials"),
    ],
)
def test_bad_arguments_fail_before_any_request(api, capsys, monkeypatch, args, message):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    monkeypatch.delenv("CLOUDFLARE_API_KEY", raising=False)
    monkeypatch.delenv("CLOUDFLARE_EMAIL", raising=False)
    if args.get("api_token", "") is None:
        args = {k: v for k, v in args.items() if k != "api_token"}
        args["api_token"] = None
    failed, result = run_module(capsys, **args)
    assert failed
    assert message in result["msg"]
    assert api.requests == []


def test_absent_ignores_ingress_arguments(api, capsys):
    failed, result = run_module(capsys, name="gpu", state="absent", ingress=INGRESS)
    assert not failed and not result["changed"]


# -- present -----------------------------------------------------------------------------------------


def test_create_returns_id_token_and_cname_then_nothing_changes(api, capsys):
    failed, result = run_module(capsys, name="calypso", diff=True)
    assert not failed and result["changed"]
    (tunnel,) = api.tunnels
    assert result["tunnel_id"] == tunnel["id"]
    assert result["cname_target"] == tunnel["id"] + ".cfargotunnel.com"
    assert "token" not in result["tunnel"] and result["tunnel"]["name"] == "calypso"
    credentials = parse_tunnel_credentials(result["tunnel_token"])
    assert credentials["tunnel_id"] == tunnel["id"]
    assert credentials["credentials"]["TunnelSecret"] == api.secrets[tunnel["id"]]
    assert result["diff"] == {"before": {}, "after": {"name": "calypso", "config_src": "local"}}
    assert api.writes() == [("POST", BASE)]
    assert api.requests[1][2]["config_src"] == "local"

    api.requests.clear()
    failed, again = run_module(capsys, name="calypso", diff=True)
    assert not failed and not again["changed"]
    assert again["tunnel_token"] == result["tunnel_token"]
    assert again["diff"]["before"] == again["diff"]["after"]
    assert api.writes() == []


def test_the_secret_never_appears_outside_the_token(api, capsys):
    result = run_module(capsys, name="calypso")[1]
    secret = api.secrets[result["tunnel_id"]]
    without_token = dict(result, tunnel_token="")
    assert secret not in json.dumps(without_token)


def test_check_mode_create_writes_nothing(api, capsys):
    failed, result = run_module(capsys, check_mode=True, diff=True, name="calypso")
    assert not failed and result["changed"]
    assert result["tunnel_id"] == result["tunnel_token"] == result["cname_target"] == ""
    assert result["tunnel"] == {"name": "calypso", "config_src": "local"}
    assert api.writes() == [] and api.tunnels == []


def test_two_tunnels_with_the_name(api, capsys):
    first, second = api.add("calypso"), api.add("calypso")
    failed, result = run_module(capsys, name="calypso")
    assert failed
    assert "2 tunnels are named 'calypso'" in result["msg"]
    assert first["id"] in result["msg"] and second["id"] in result["msg"]


def test_deleted_tunnels_are_ignored(api, capsys):
    old = api.add("calypso")
    old["deleted_at"] = "2026-01-01T00:00:00Z"
    failed, result = run_module(capsys, name="calypso")
    assert not failed and result["changed"]
    assert result["tunnel_id"] != old["id"]


def test_list_query(api, capsys, monkeypatch):
    seen = []
    original = api.__call__

    def recording(method, url, *rest):
        seen.append(url)
        return original(method, url, *rest)

    monkeypatch.setattr(cloudflare, "urls_transport", recording)
    run_module(capsys, name="calypso")
    query = parse_qs(urlsplit(seen[0]).query)
    assert query["name"] == ["calypso"] and query["is_deleted"] == ["false"]


def test_config_src_cannot_be_switched(api, capsys):
    tunnel = api.add("calypso", config_src="local")
    failed, result = run_module(capsys, name="calypso", config_src="cloudflare", ingress=INGRESS)
    assert failed
    assert result["msg"] == (
        f"tunnel 'calypso' (id {tunnel['id']}) exists with config_src=local, not cloudflare; Cloudflare's API cannot "
        "switch it: use config_src=local, or delete the tunnel (state=absent) and create it again"
    )
    assert api.writes() == []


def test_a_token_for_another_tunnel_is_refused(api, capsys):
    api.add("calypso")
    api.token_for = str(uuid.uuid4())
    failed, result = run_module(capsys, name="calypso")
    assert failed
    assert f"is for tunnel {api.token_for}" in result["msg"]
    assert "tunnel_token" not in result


# -- remotely managed configuration ----------------------------------------------------------------


def test_ingress_put_once_then_unchanged(api, capsys):
    failed, result = run_module(capsys, diff=True, name="remote", config_src="cloudflare", ingress=INGRESS)
    assert not failed and result["changed"]
    tunnel_id = result["tunnel_id"]
    assert api.writes() == [("POST", BASE), ("PUT", f"{BASE}/{tunnel_id}/configurations")]
    assert api.configs[tunnel_id]["config"] == {"ingress": INGRESS}
    assert result["configuration"] == {"ingress": INGRESS}
    assert result["diff"] == {"before": {}, "after": {"name": "remote", "config_src": "cloudflare", "ingress": INGRESS}}

    api.requests.clear()
    failed, again = run_module(capsys, diff=True, name="remote", config_src="cloudflare", ingress=INGRESS)
    assert not failed and not again["changed"]
    assert api.writes() == []
    assert again["diff"]["before"] == again["diff"]["after"]


def test_ingress_change_is_put_with_a_diff(api, capsys):
    tunnel = api.add("remote", config_src="cloudflare")
    api.configs[tunnel["id"]] = {"version": 3, "config": {"ingress": INGRESS, "warp-routing": {"enabled": True}}}
    new = [{**INGRESS[0], "service": "http://localhost:8001"}, INGRESS[1]]
    failed, result = run_module(
        capsys, diff=True, name="remote", config_src="cloudflare", ingress=new, origin_request={"connectTimeout": 10}
    )
    assert not failed and result["changed"]
    assert result["diff"]["before"] == {"name": "remote", "config_src": "cloudflare", "ingress": INGRESS}
    assert result["diff"]["after"] == {
        "name": "remote",
        "config_src": "cloudflare",
        "ingress": new,
        "originRequest": {"connectTimeout": 10},
    }
    # warp-routing, which the module does not manage, is kept.
    assert api.configs[tunnel["id"]] == {
        "version": 4,
        "config": {"ingress": new, "originRequest": {"connectTimeout": 10}, "warp-routing": {"enabled": True}},
    }


def test_empty_fields_from_the_api_compare_equal(api, capsys):
    tunnel = api.add("remote", config_src="cloudflare")
    spelled_out = [{**INGRESS[0], "path": "", "originRequest": {}}, {**INGRESS[1], "hostname": "", "originRequest": {}}]
    api.configs[tunnel["id"]] = {"version": 1, "config": {"ingress": spelled_out, "originRequest": {}}}
    failed, result = run_module(capsys, name="remote", config_src="cloudflare", ingress=INGRESS)
    assert not failed and not result["changed"]
    assert api.writes() == []


def test_origin_request_kept_when_not_given(api, capsys):
    tunnel = api.add("remote", config_src="cloudflare")
    api.configs[tunnel["id"]] = {"version": 1, "config": {"ingress": INGRESS, "originRequest": {"connectTimeout": 5}}}
    failed, result = run_module(capsys, name="remote", config_src="cloudflare", ingress=INGRESS)
    assert not failed and not result["changed"]
    assert result["configuration"]["originRequest"] == {"connectTimeout": 5}


def test_configuration_left_alone_without_ingress(api, capsys):
    tunnel = api.add("remote", config_src="cloudflare")
    api.configs[tunnel["id"]] = {"version": 1, "config": {"ingress": INGRESS}}
    failed, result = run_module(capsys, name="remote", config_src="cloudflare")
    assert not failed and not result["changed"]
    assert result["configuration"] == {"ingress": INGRESS}
    assert api.writes() == []


def test_check_mode_ingress_change_writes_nothing(api, capsys):
    tunnel = api.add("remote", config_src="cloudflare")
    api.configs[tunnel["id"]] = {"version": 1, "config": {"ingress": INGRESS}}
    new = [{**INGRESS[0], "service": "http://localhost:8001"}, INGRESS[1]]
    failed, result = run_module(capsys, check_mode=True, diff=True, name="remote", config_src="cloudflare", ingress=new)
    assert not failed and result["changed"]
    assert result["diff"]["after"]["ingress"] == new
    assert result["tunnel_token"]  # read in check mode too: reading writes nothing
    assert api.writes() == []
    assert api.configs[tunnel["id"]]["config"] == {"ingress": INGRESS}


# -- absent ------------------------------------------------------------------------------------------


def test_absent_cleans_connections_first(api, capsys):
    tunnel = api.add("calypso", connections=[{"id": "c1", "conns": [{"colo_name": "ams01"}]}])
    failed, result = run_module(capsys, diff=True, name="calypso", state="absent")
    assert not failed and result["changed"] and result["connections_cleaned"]
    assert api.writes() == [("DELETE", f"{BASE}/{tunnel['id']}/connections"), ("DELETE", f"{BASE}/{tunnel['id']}")]
    assert result["diff"] == {"before": {"name": "calypso", "config_src": "local"}, "after": {}}
    assert result["tunnel_token"] == ""

    api.requests.clear()
    failed, again = run_module(capsys, name="calypso", state="absent")
    assert not failed and not again["changed"]
    assert api.writes() == []


def test_absent_without_connections_deletes_only_the_tunnel(api, capsys):
    tunnel = api.add("calypso")
    failed, result = run_module(capsys, name="calypso", state="absent")
    assert not failed and result["changed"] and not result["connections_cleaned"]
    assert api.writes() == [("DELETE", f"{BASE}/{tunnel['id']}")]


def test_absent_check_mode(api, capsys):
    api.add("calypso", connections=[{"id": "c1"}])
    failed, result = run_module(capsys, check_mode=True, name="calypso", state="absent")
    assert not failed and result["changed"]
    assert api.writes() == []


def test_api_errors_are_quoted(api, capsys, monkeypatch):
    tunnel = api.add("calypso", connections=[{"id": "c1"}])

    def cleanup_that_does_nothing(method, url, headers, data, *rest):
        if method == "DELETE" and url.endswith("/connections"):
            return api._ok(None)  # so that Cloudflare's refusal to delete reaches the module
        return api(method, url, headers, data, *rest)

    monkeypatch.setattr(cloudflare, "urls_transport", cleanup_that_does_nothing)
    failed, result = run_module(capsys, name="calypso", state="absent")
    assert failed
    assert result["msg"].startswith(f"tunnel 'calypso': Cloudflare API DELETE {BASE}/{tunnel['id']} failed: HTTP 400")
    assert "1022 Cannot delete tunnel because it has active connections" in result["msg"]
    assert result["codes"] == [1022]
