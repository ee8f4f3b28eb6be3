# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Cloudflare emulator itself (tests/support/cloudflare_emulator.py): envelope, auth, validation refusals,
pagination, where secrets appear, 429, Access decisions at the emulated edge. Over loopback HTTP, in-process."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import jsonschema
import pytest

from tests.support.cloudflare_emulator import CloudflareEmulator
from tests.support.cloudflare_schema import load_specs, response_errors, to_json_schema


@pytest.fixture
def emu():
    emulator = CloudflareEmulator().start()
    yield emulator
    emulator.stop()


def call(emu, method, path, body=None, headers=None, raw: bytes | None = None, auth=True):
    sent = {"Content-Type": "application/json"}
    if auth:
        sent["Authorization"] = f"Bearer {emu.api_token}"
    sent.update(headers or {})
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(emu.url + path, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def ok(emu, method, path, body=None, status=None):
    code, document, _headers = call(emu, method, path, body)
    assert document["success"] is True, (code, document)
    if status is not None:
        assert code == status, document
    return document["result"]


def refused(emu, method, path, body=None, status=400, **kw):
    code, document, _headers = call(emu, method, path, body, **kw)
    assert (code, document["success"], document["result"]) == (status, False, None), (code, document)
    assert document["errors"] and all(e["code"] >= 1000 and e["message"] for e in document["errors"])
    return document["errors"]


def acct(emu, tail=""):
    return f"/accounts/{emu.account_id}{tail}"


def zone(emu, tail=""):
    return f"/zones/{emu.zone_id}{tail}"


_ENVELOPE = load_specs()["cloudflare-access-service-tokens.json"]["common_envelope_schemas_2026"]["schemas"]


def envelope_valid(document: dict, name: str) -> None:
    jsonschema.Draft4Validator(to_json_schema(_ENVELOPE, name)).validate(document)


# --- envelope, auth, routing ----------------------------------------------------------------------------------
def test_envelopes_follow_the_2026_common_schemas(emu):
    code, document, _headers = call(emu, "GET", acct(emu, "/access/service_tokens"))
    assert code == 200
    envelope_valid(document, "api-response-collection")
    assert set(document["result_info"]) == {"page", "per_page", "count", "total_count", "total_pages"}
    code, document, _headers = call(emu, "POST", acct(emu, "/access/service_tokens"), {})
    assert code == 400
    envelope_valid(document, "api-response-common-failure")


def test_both_auth_styles_and_the_refusals(emu):
    path = acct(emu, "/cfd_tunnel")
    assert (
        call(emu, "GET", path, auth=False, headers={"X-Auth-Key": emu.api_key, "X-Auth-Email": emu.api_email})[0] == 200
    )
    errors = refused(emu, "GET", path, status=401, auth=False, headers={"Authorization": "Bearer wrong"})
    assert errors[0] == {"code": 10000, "message": "Authentication error"}
    refused(emu, "GET", path, status=401, auth=False)
    wrong_key = {"X-Auth-Key": "0" * 37, "X-Auth-Email": emu.api_email}
    assert refused(emu, "GET", path, status=401, auth=False, headers=wrong_key)[0]["code"] == 10000
    errors = refused(emu, "GET", path, status=400, auth=False, headers={"Authorization": emu.api_token})
    assert errors[0]["code"] == 6003 and errors[0]["error_chain"][0]["code"] == 6111
    assert refused(emu, "GET", path, status=400, auth=False, headers={"X-Auth-Key": emu.api_key})[0]["code"] == 6003


def test_a_token_without_the_permission_gets_403(emu):
    reader = emu.add_api_token(["dns:read", "zone:read"])
    headers = {"Authorization": f"Bearer {reader}"}
    assert call(emu, "GET", zone(emu, "/dns_records"), headers=headers)[0] == 200
    body = {"type": "A", "name": "a", "content": "192.0.2.1", "ttl": 1}
    assert refused(emu, "POST", zone(emu, "/dns_records"), body, status=403, headers=headers)[0]["code"] == 10000
    refused(emu, "GET", acct(emu, "/cfd_tunnel"), status=403, headers=headers)


def test_unknown_routes_accounts_and_ids(emu):
    assert refused(emu, "GET", "/nothing/here", status=404)[0]["code"] == 7003
    refused(emu, "GET", "/accounts/" + "0" * 32 + "/cfd_tunnel", status=404)
    refused(emu, "GET", acct(emu, "/cfd_tunnel/6f0e9e38-0d25-4c2a-9d4e-000000000000"), status=404)
    refused(emu, "GET", acct(emu, "/access/apps/6f0e9e38-0d25-4c2a-9d4e-000000000000"), status=404)
    assert refused(emu, "GET", zone(emu, "/dns_records/" + "a" * 32), status=404)[0]["code"] == 81044
    # rotate and refresh exist at account level only
    token = ok(emu, "POST", zone(emu, "/access/service_tokens"), {"name": "z"})
    refused(emu, "POST", zone(emu, f"/access/service_tokens/{token['id']}/rotate"), {}, status=404)
    refused(emu, "PATCH", acct(emu, "/access/service_tokens"), {}, status=405)


def test_malformed_json_and_missing_bodies(emu):
    assert refused(emu, "POST", acct(emu, "/cfd_tunnel"), raw=b"{not json")[0]["code"] == 6007
    token = ok(emu, "POST", acct(emu, "/access/service_tokens"), {"name": "t"})
    refused(emu, "PUT", acct(emu, f"/access/service_tokens/{token['id']}"))  # PUT needs {} at least
    assert ok(emu, "PUT", acct(emu, f"/access/service_tokens/{token['id']}"), {})["name"] == "t"


# --- validation refusals --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        ("/access/service_tokens", {"duration": "8760h"}, "/"),
        ("/access/service_tokens", {"name": 5}, "/name"),
        ("/access/service_tokens", {"name": "t", "duration": "365d"}, "/duration"),
        ("/cfd_tunnel", {"config_src": "local", "tunnel_secret": base64.b64encode(b"x" * 32).decode()}, "/"),
        ("/cfd_tunnel", {"name": "t", "config_src": "remote"}, "/config_src"),
        ("/cfd_tunnel", {"name": "t", "tunnel_secret": base64.b64encode(b"short").decode()}, "/tunnel_secret"),
        ("/cfd_tunnel", {"name": "0b0c8f2e-0d25-4c2a-9d4e-3b3e9f3c2a11", "config_src": "cloudflare"}, "/name"),
        ("/access/policies", {"name": "p", "decision": "allow"}, "/"),
        ("/access/policies", {"name": "p", "decision": "admit", "include": [{"everyone": {}}]}, "/decision"),
        ("/access/policies", {"name": "p", "decision": "non_identity", "include": []}, "/include"),
        ("/access/policies", {"name": "p", "decision": "non_identity", "include": [{"nonsense": {}}]}, "/include/0"),
        (
            "/access/policies",
            {"name": "p", "decision": "non_identity", "include": [{"everyone": {}, "any_valid_service_token": {}}]},
            "/include/0",
        ),
        ("/access/policies", {"name": "p", "decision": "non_identity", "include": [{"service_token": {}}]}, None),
        ("/access/apps", {"type": "self_hosted", "name": "no domain"}, None),
        ("/access/apps", {"domain": "gpu.oceanid.example", "name": "no type"}, None),
        ("/access/apps", {"type": "self_hosted", "domain": "gpu.oceanid.example", "session_duration": "1d"}, None),
    ],
)
def test_request_bodies_are_validated(emu, path, body, pointer):
    errors = refused(emu, "POST", acct(emu, path), body)
    if pointer is not None:
        assert errors[0]["source"]["pointer"].startswith(pointer), errors


def test_a_tunnel_name_is_unique_and_deletion_waits_for_connections(emu):
    tunnel = ok(emu, "POST", acct(emu, "/cfd_tunnel"), {"name": "gpu", "config_src": "cloudflare"}, 200)
    assert (
        refused(emu, "POST", acct(emu, "/cfd_tunnel"), {"name": "gpu", "config_src": "cloudflare"}, 409)[0]["code"]
        == 1013
    )
    emu.connect_tunnel(tunnel["id"])
    assert ok(emu, "GET", acct(emu, f"/cfd_tunnel/{tunnel['id']}"))["status"] == "healthy"
    assert len(ok(emu, "GET", acct(emu, f"/cfd_tunnel/{tunnel['id']}/connections"))) == 1
    assert refused(emu, "DELETE", acct(emu, f"/cfd_tunnel/{tunnel['id']}"))[0]["code"] == 1022
    ok(emu, "DELETE", acct(emu, f"/cfd_tunnel/{tunnel['id']}/connections"))
    deleted = ok(emu, "DELETE", acct(emu, f"/cfd_tunnel/{tunnel['id']}"), status=200)
    assert deleted["deleted_at"]
    assert ok(emu, "GET", acct(emu, "/cfd_tunnel?name=gpu&is_deleted=false")) == []
    assert [t["id"] for t in ok(emu, "GET", acct(emu, "/cfd_tunnel?name=gpu"))] == [tunnel["id"]]
    ok(emu, "POST", acct(emu, "/cfd_tunnel"), {"name": "gpu", "config_src": "cloudflare"})  # name free again


def test_tunnel_configuration_versions_and_catch_all(emu):
    tunnel = ok(emu, "POST", acct(emu, "/cfd_tunnel"), {"name": "gpu", "config_src": "cloudflare"})
    path = acct(emu, f"/cfd_tunnel/{tunnel['id']}/configurations")
    assert ok(emu, "GET", path)["version"] == 0
    rules = [{"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"}, {"service": "http_status:404"}]
    assert ok(emu, "PUT", path, {"config": {"ingress": rules}})["version"] == 1
    assert ok(emu, "PUT", path, {"config": {"ingress": rules}})["version"] == 2
    refused(emu, "PUT", path, {"config": {"ingress": [{"service": "http_status:404"}, rules[0]]}})
    refused(emu, "PUT", path, {"config": {"ingress": [{"hostname": "x.oceanid.example"}]}})
    assert ok(emu, "GET", path)["config"]["ingress"] == rules


# --- DNS --------------------------------------------------------------------------------------------------------
def test_dns_rules_and_codes(emu):
    records = zone(emu, "/dns_records")
    body = {"type": "CNAME", "name": "gpu", "content": "t.cfargotunnel.com", "ttl": 1, "proxied": True}
    created = ok(emu, "POST", records, dict(body, comment=None, tags=[]), 200)
    assert created["name"] == "gpu.oceanid.example" and created["comment"] is None and created["tags"] == []
    assert not {"zone_id", "zone_name", "locked"} & set(created)
    assert refused(emu, "POST", records, dict(body, content="other.example.net"))[0]["code"] == 81053
    assert refused(emu, "POST", records, body)[0]["code"] == 81058
    a_record = {"type": "A", "name": "gpu.oceanid.example", "content": "192.0.2.1", "ttl": 1}
    assert refused(emu, "POST", records, a_record)[0]["code"] == 81054
    assert refused(emu, "POST", records, dict(a_record, name="a", content="not-an-ip"))[0]["code"] == 9005
    assert refused(emu, "POST", records, dict(body, name="x", content="192.0.2.7"))[0]["code"] == 9007
    assert refused(emu, "POST", records, dict(a_record, name="b", ttl=20))[0]["code"] == 9021
    assert refused(emu, "POST", records, {"type": "A", "name": "c"})[0]["code"] == 1001  # content required
    ok(emu, "POST", records, dict(a_record, name="d", ttl=120), 200)
    ok(emu, "POST", records, dict(a_record, name="d", content="192.0.2.2"), 200)  # several A on one name
    patched = ok(emu, "PATCH", zone(emu, f"/dns_records/{created['id']}"), {"comment": "tunnel"})
    assert (patched["comment"], patched["content"], patched["proxied"]) == ("tunnel", body["content"], True)
    assert refused(emu, "PATCH", zone(emu, f"/dns_records/{created['id']}"), {"type": "A", "content": "192.0.2.9"})
    put = ok(emu, "PUT", zone(emu, f"/dns_records/{created['id']}"), {"type": "CNAME", "name": "gpu", "content": "u.x"})
    assert (put["proxied"], put["comment"], put["tags"]) == (False, None, [])  # overwrite: defaults again
    assert ok(emu, "DELETE", zone(emu, f"/dns_records/{created['id']}"), status=200) == {"id": created["id"]}
    found = ok(emu, "GET", records + "?type=A&name=D.oceanid.example&content=192.0.2.2")
    assert [r["content"] for r in found] == ["192.0.2.2"]


def test_zones_lookup_by_name(emu):
    code, document, _headers = call(emu, "GET", "/zones?name=oceanid.example")
    assert code == 200 and [z["id"] for z in document["result"]] == [emu.zone_id]
    assert document["result_info"]["total_pages"] == 1
    assert ok(emu, "GET", "/zones?name=other.example") == []
    refused(emu, "GET", "/zones?per_page=51")


# --- pagination -------------------------------------------------------------------------------------------------
def test_pagination(emu):
    for n in range(5):
        ok(emu, "POST", acct(emu, "/access/service_tokens"), {"name": f"t{n}"})
    pages = []
    for page in (1, 2, 3, 4):
        code, document, _headers = call(emu, "GET", acct(emu, f"/access/service_tokens?per_page=2&page={page}"))
        pages.append(([t["name"] for t in document["result"]], document["result_info"]))
    assert [p[0] for p in pages] == [["t0", "t1"], ["t2", "t3"], ["t4"], []]
    assert pages[0][1] == {"page": 1, "per_page": 2, "count": 2, "total_count": 5, "total_pages": 3}
    assert [t["name"] for t in ok(emu, "GET", acct(emu, "/access/service_tokens?name=t3"))] == ["t3"]
    refused(emu, "GET", acct(emu, "/access/service_tokens?page=0"))
    refused(emu, "GET", acct(emu, "/cfd_tunnel?per_page=0"))


# --- secrets ----------------------------------------------------------------------------------------------------
def test_client_secret_only_in_create_rotate_and_version_bump(emu):
    created = ok(emu, "POST", acct(emu, "/access/service_tokens"), {"name": "adapter"}, 201)
    secret = created["client_secret"]
    assert secret.startswith("cfast_") and len(secret) == 6 + 40 + 8
    assert created["client_id"].endswith(".access") and created["duration"] == "8760h" and created["expires_at"]
    path = acct(emu, f"/access/service_tokens/{created['id']}")
    seen = [ok(emu, "GET", path), ok(emu, "PUT", path, {"name": "adapter"}), ok(emu, "POST", path + "/refresh")]
    seen += ok(emu, "GET", acct(emu, "/access/service_tokens"))
    assert all("client_secret" not in item for item in seen)
    rotated = ok(emu, "POST", path + "/rotate", {}, 200)
    assert rotated["client_secret"] not in ("", secret) and rotated["client_id"] == created["client_id"]
    bumped = ok(emu, "PUT", path, {"client_secret_version": rotated["client_secret_version"] + 1})
    assert bumped["client_secret"] not in (secret, rotated["client_secret"])
    deleted = ok(emu, "DELETE", path, status=200)
    assert "client_secret" not in deleted
    assert secret not in json.dumps(emu.state()) and bumped["client_secret"] not in json.dumps(emu.state())


def test_tunnel_secret_only_on_create_and_token_only_from_its_endpoint(emu):
    secret = base64.b64encode(b"s" * 32).decode()
    created = ok(emu, "POST", acct(emu, "/cfd_tunnel"), {"name": "gpu", "tunnel_secret": secret}, 200)
    assert created["credentials_file"]["TunnelSecret"] == secret and "token" not in created
    listed = ok(emu, "GET", acct(emu, "/cfd_tunnel"))
    got = ok(emu, "GET", acct(emu, f"/cfd_tunnel/{created['id']}"))
    assert secret not in json.dumps([listed, got, emu.state()])
    token = ok(emu, "GET", acct(emu, f"/cfd_tunnel/{created['id']}/token"))
    assert json.loads(base64.b64decode(token)) == {"a": emu.account_id, "t": created["id"], "s": secret}


# --- 429 --------------------------------------------------------------------------------------------------------
def test_every_nth_request_is_rate_limited_but_dns_is_exempt(emu):
    emu.rate_limit_every = 3
    codes = [call(emu, "GET", acct(emu, "/cfd_tunnel"))[0] for _attempt in range(6)]
    assert codes == [200, 200, 429, 200, 200, 429]
    code, document, headers = call(emu, "GET", acct(emu, "/cfd_tunnel"))
    code, document, headers = call(emu, "GET", acct(emu, "/cfd_tunnel"))
    code, document, headers = call(emu, "GET", acct(emu, "/cfd_tunnel"))
    assert code == 429 and headers["Retry-After"] == "1" and document["success"] is False
    assert [call(emu, "GET", zone(emu, "/dns_records"))[0] for _attempt in range(6)] == [200] * 6
    assert call(emu, "GET", "/zones?name=oceanid.example")[0] == 200
    assert [r["status"] for r in emu.requests].count(429) == 3


# --- Access at the edge ---------------------------------------------------------------------------------------
def _protected(emu, scope="accounts"):
    base = acct(emu) if scope == "accounts" else zone(emu)
    token = ok(emu, "POST", base + "/access/service_tokens", {"name": "adapter"})
    app = {
        "type": "self_hosted",
        "name": "gpu",
        "domain": "gpu.oceanid.example",
        "session_duration": "24h",
        "policies": [
            {"name": "adapter", "decision": "non_identity", "include": [{"service_token": {"token_id": token["id"]}}]}
        ],
    }
    created = ok(emu, "POST", base + "/access/apps", app, 201)
    return token, created


def _headers(token, secret=None):
    return {"CF-Access-Client-Id": token["client_id"], "CF-Access-Client-Secret": secret or token["client_secret"]}


@pytest.mark.parametrize("scope", ["accounts", "zones"])
def test_access_admits_only_the_service_token(emu, scope):
    token, app = _protected(emu, scope)
    assert len(app["aud"]) == 64 and app["policies"][0]["precedence"] == 1
    assert app["self_hosted_domains"] == ["gpu.oceanid.example"]
    assert emu.access_allows("gpu.oceanid.example", _headers(token))
    assert emu.access_allows("GPU.oceanid.example:443", {k.lower(): v for k, v in _headers(token).items()})
    assert not emu.access_allows("gpu.oceanid.example", {})
    assert not emu.access_allows("gpu.oceanid.example", _headers(token, "cfast_wrong"))
    assert emu.access_allows("other.oceanid.example", {})  # no application: Access does not protect it


def test_rotation_grace_expiry_disable_and_delete(emu):
    token, _app = _protected(emu)
    path = acct(emu, f"/access/service_tokens/{token['id']}")
    rotated = ok(emu, "POST", path + "/rotate", {"previous_client_secret_expires_at": "2099-01-01T00:00:00Z"})
    assert emu.access_allows("gpu.oceanid.example", _headers(token))  # grace period
    assert emu.access_allows("gpu.oceanid.example", _headers(token, rotated["client_secret"]))
    newest = ok(emu, "POST", path + "/rotate", {})["client_secret"]  # previous secret expires now
    assert not emu.access_allows("gpu.oceanid.example", _headers(token, rotated["client_secret"]))
    assert emu.access_allows("gpu.oceanid.example", _headers(token, newest))
    ok(emu, "PUT", path, {"enabled": False})
    assert not emu.access_allows("gpu.oceanid.example", _headers(token, newest))
    ok(emu, "PUT", path, {"enabled": True, "duration": "1ns"})
    assert not emu.access_allows("gpu.oceanid.example", _headers(token, newest))  # expired
    ok(emu, "PUT", path, {"duration": "8760h"})
    assert emu.access_allows("gpu.oceanid.example", _headers(token, newest))
    ok(emu, "DELETE", path)
    assert not emu.access_allows("gpu.oceanid.example", _headers(token, newest))


def test_reusable_policies_links_and_app_count(emu):
    token = ok(emu, "POST", acct(emu, "/access/service_tokens"), {"name": "adapter"})
    policy = ok(
        emu,
        "POST",
        acct(emu, "/access/policies"),
        {"name": "adapter", "decision": "non_identity", "include": [{"service_token": {"token_id": token["id"]}}]},
        201,
    )
    assert policy["reusable"] is True and policy["app_count"] == 0 and "precedence" not in policy
    app = ok(
        emu,
        "POST",
        acct(emu, "/access/apps"),
        {"type": "self_hosted", "name": "gpu", "domain": "gpu.oceanid.example", "policies": [policy["id"]]},
    )
    assert [(p["id"], p["precedence"]) for p in app["policies"]] == [(policy["id"], 1)]
    assert ok(emu, "GET", acct(emu, f"/access/policies/{policy['id']}"))["app_count"] == 1
    assert emu.access_allows("gpu.oceanid.example", _headers(token))
    inline = {"name": "x", "decision": "non_identity", "include": [{"any_valid_service_token": {}}]}
    mixed = {"type": "self_hosted", "domain": "gpu.oceanid.example", "policies": [policy["id"], inline]}
    refused(emu, "PUT", acct(emu, f"/access/apps/{app['id']}"), mixed)
    refused(emu, "DELETE", acct(emu, f"/access/policies/{policy['id']}"))  # still linked
    duplicate = {"type": "self_hosted", "domain": "gpu.oceanid.example", "name": "again"}
    refused(emu, "POST", acct(emu, "/access/apps"), duplicate)
    assert ok(emu, "DELETE", acct(emu, f"/access/apps/{app['id']}"), status=202) == {"id": app["id"]}
    assert ok(emu, "DELETE", acct(emu, f"/access/policies/{policy['id']}"), status=202) == {"id": policy["id"]}
    assert emu.access_allows("gpu.oceanid.example", {})  # unprotected again


def test_app_scoped_policies_and_make_reusable(emu):
    _token, app = _protected(emu)
    base = acct(emu, f"/access/apps/{app['id']}/policies")
    [listed] = ok(emu, "GET", base)
    extra = ok(emu, "POST", base, {"name": "deny", "decision": "deny", "include": [{"everyone": {}}]}, 201)
    assert extra["precedence"] == 2 and "reusable" not in extra
    refused(emu, "POST", base, {"name": "dup", "decision": "deny", "include": [{"everyone": {}}], "precedence": 2})
    assert not emu.access_allows("gpu.oceanid.example", _headers(_token))  # Block matches everyone
    assert ok(emu, "DELETE", f"{base}/{extra['id']}", status=202) == {"id": extra["id"]}
    converted = ok(emu, "PUT", f"{base}/{listed['id']}/make_reusable")
    assert converted[0]["reusable"] is True and converted[0]["app_count"] == 1
    refused(emu, "DELETE", f"{base}/{listed['id']}")  # a reusable policy is not deleted through the app


def test_a_policy_admitting_tokens_must_be_service_auth(emu):
    token = ok(emu, "POST", acct(emu, "/access/service_tokens"), {"name": "adapter"})
    body = {"name": "p", "decision": "allow", "include": [{"service_token": {"token_id": token["id"]}}]}
    refused(emu, "POST", acct(emu, "/access/policies"), body)


# --- responses against the spec's response schemas ------------------------------------------------------------
def test_every_response_follows_the_operation_response_schema(emu):
    """One pass over every emulated operation; each answer validates against the subset's response schema for
    its status (2xx and the failures' 4XX)."""
    a, z = acct(emu), zone(emu)
    seen = []

    def go(method, path, body=None):
        code, document, _headers = call(emu, method, path, body)
        seen.append((method, path.split("?")[0], code, document))
        return document["result"]

    token = go("POST", a + "/access/service_tokens", {"name": "a"})
    for method, tail, body in (
        ("GET", "", None),
        ("GET", f"/{token['id']}", None),
        ("PUT", f"/{token['id']}", {"name": "b"}),
        ("POST", f"/{token['id']}/rotate", {}),
        ("POST", f"/{token['id']}/refresh", None),
    ):
        go(method, a + "/access/service_tokens" + tail, body)
    zone_token = go("POST", z + "/access/service_tokens", {"name": "z"})
    go("GET", z + "/access/service_tokens")
    go("GET", z + f"/access/service_tokens/{zone_token['id']}")
    tunnel = go("POST", a + "/cfd_tunnel", {"name": "g", "config_src": "cloudflare"})
    t = a + f"/cfd_tunnel/{tunnel['id']}"
    go("GET", a + "/cfd_tunnel?is_deleted=false")
    go("GET", t)
    rules = [{"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"}, {"service": "http_status:404"}]
    go("PUT", t + "/configurations", {"config": {"ingress": rules}})
    go("GET", t + "/configurations")
    go("GET", t + "/token")
    emu.connect_tunnel(tunnel["id"])
    go("GET", t + "/connections")
    go("DELETE", t)  # refused: live connections
    go("DELETE", t + "/connections")
    go("PATCH", t, {"name": "h"})
    go("DELETE", t)
    rule = [{"service_token": {"token_id": token["id"]}}]
    policy = go("POST", a + "/access/policies", {"name": "p", "decision": "non_identity", "include": rule})
    go("GET", a + "/access/policies")
    go("PUT", a + f"/access/policies/{policy['id']}", {"name": "p", "decision": "non_identity", "include": rule})
    app_body = {"type": "self_hosted", "name": "g", "domain": "gpu.oceanid.example", "policies": [policy["id"]]}
    app = go("POST", a + "/access/apps", app_body)
    go("GET", a + "/access/apps")
    go("PUT", a + f"/access/apps/{app['id']}", dict(app_body, policies=[{"id": policy["id"], "precedence": 1}]))
    go("GET", a + f"/access/apps/{app['id']}/policies")
    zone_app = go("POST", z + "/access/apps", {"type": "self_hosted", "name": "h", "domain": "h.oceanid.example"})
    zp = z + f"/access/apps/{zone_app['id']}/policies"
    scoped = go("POST", zp, {"name": "q", "decision": "non_identity", "include": [{"any_valid_service_token": {}}]})
    go("GET", zp + f"/{scoped['id']}")
    go("PUT", zp + f"/{scoped['id']}", {"name": "q", "decision": "bypass", "include": [{"everyone": {}}]})
    go("DELETE", zp + f"/{scoped['id']}")
    go("DELETE", z + f"/access/apps/{zone_app['id']}")
    go("DELETE", a + f"/access/apps/{app['id']}")
    go("DELETE", a + f"/access/policies/{policy['id']}")
    go("GET", "/zones?name=oceanid.example")
    record = {"type": "CNAME", "name": "gpu", "content": "x.cfargotunnel.com", "ttl": 1, "proxied": True}
    created = go("POST", z + "/dns_records", dict(record, comment=None, tags=[]))
    r = z + f"/dns_records/{created['id']}"
    go("POST", z + "/dns_records", record)  # refused: identical
    go("GET", z + "/dns_records?name=gpu.oceanid.example&type=CNAME")
    go("GET", r)
    go("PUT", r, dict(record, content="y.cfargotunnel.com"))
    go("PATCH", r, {"comment": "the GPU endpoint", "tags": ["owner:fleet"]})
    go("DELETE", r)
    go("DELETE", a + f"/access/service_tokens/{token['id']}")
    problems = [p for method, path, code, document in seen for p in response_errors(method, path, code, document)]
    assert problems == []
    assert sorted({code for *_rest, code, _doc in seen}) == [200, 201, 202, 400]


def test_a_refused_app_keeps_no_inline_policy(emu):
    inline = {"name": "x", "decision": "non_identity", "include": [{"any_valid_service_token": {}}], "precedence": 1}
    body = {"type": "self_hosted", "name": "g", "domain": "gpu.oceanid.example", "policies": [inline, dict(inline)]}
    refused(emu, "POST", acct(emu, "/access/apps"), body)  # two policies with precedence 1
    assert emu.state()["access_policies"] == [] and emu.state()["access_apps"] == []
    app = ok(emu, "POST", acct(emu, "/access/apps"), dict(body, policies=[inline]), 201)
    [policy] = emu.state()["access_policies"]
    assert "reusable" not in policy and app["policies"][0]["id"] == policy["id"]
    assert ok(emu, "GET", acct(emu, "/access/policies")) == []  # an inline policy is not a reusable one


def test_a_refused_update_changes_nothing(emu):
    token = ok(emu, "POST", acct(emu, "/access/service_tokens"), {"name": "adapter"})
    path = acct(emu, f"/access/service_tokens/{token['id']}")
    refused(emu, "PUT", path, {"name": "renamed", "duration": "30d"})
    refused(emu, "PUT", path, {"name": "renamed", "client_secret_version": 0})
    assert ok(emu, "GET", path)["name"] == "adapter"
