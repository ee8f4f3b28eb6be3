# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloudflare_access_service_token's main() against a small in-memory fake transport: argument messages, which
requests each state sends, when a secret is returned and written. The module runs against the (strict) Cloudflare
emulator in tests/integration/cloudflare/test_access_service_token.py.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from urllib.parse import urlsplit

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import cloudflare
from ansible_collections.oceanid.fleet.plugins.modules import cloudflare_access_service_token as module
from tests.support.cloudflare_unit import FakeCloudflareBase, run_cloudflare_module

ACCOUNT = "0123456789abcdef0123456789abcdef"


class FakeTokens(FakeCloudflareBase):
    """Just enough of /access/service_tokens to drive the module: an in-memory list, every request recorded."""

    def __init__(self):
        self.tokens = []
        self.requests = []
        self.secrets = 0

    def _secret(self):
        self.secrets += 1
        return "secret-%d" % self.secrets

    def __call__(self, method, url, headers, data, timeout, validate_certs):
        path = urlsplit(url).path.split("/client/v4", 1)[1]
        body = json.loads(data) if data else None
        self.requests.append((method, path, body))
        parts = path.strip("/").split("/")  # accounts|zones, id, access, service_tokens[, id[, action]]
        if method == "GET" and len(parts) == 4:
            return self._ok(
                list(self.tokens), info={"page": 1, "per_page": 50, "count": len(self.tokens), "total_pages": 1}
            )
        if method == "POST" and len(parts) == 4:
            token = {
                "id": str(uuid.uuid4()),
                "name": body["name"],
                "client_id": uuid.uuid4().hex + ".access",
                "duration": body.get("duration", "8760h"),
                "expires_at": "2027-12-04T00:00:00Z",
                "client_secret_version": 1,
            }
            self.tokens.append(token)
            return self._ok(dict(token, client_secret=self._secret()), status=201)
        token = next(t for t in self.tokens if t["id"] == parts[4])
        if method == "PUT":
            secret = None
            if body.get("client_secret_version", token["client_secret_version"]) > token["client_secret_version"]:
                secret = self._secret()
            token.update(body)
            return self._ok(dict(token, client_secret=secret) if secret else dict(token))
        if method == "DELETE":
            self.tokens.remove(token)
            return self._ok(dict(token))
        if parts[5:] == ["rotate"]:
            token["client_secret_version"] += 1
            return self._ok(dict(token, client_secret=self._secret()))
        if parts[5:] == ["refresh"]:
            token["expires_at"] = "2028-12-04T00:00:00Z"
            return self._ok(dict(token))
        raise AssertionError("unexpected request %s %s" % (method, path))


@pytest.fixture
def api(monkeypatch):
    fake = FakeTokens()
    monkeypatch.setattr(cloudflare, "urls_transport", fake)
    return fake


def run_module(capsys, check_mode=False, diff=False, **args):
    """Run main() with these arguments; return (failed, result)."""
    return run_cloudflare_module(module, capsys, check_mode=check_mode, diff=diff, **args)


# -- arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"duration": "30d"},
            "duration '30d' is not a Go duration such as 8760h or 2h45m (units ns, us, ms, s, m, h; days are not a unit) nor 'forever'",
        ),
        ({"name": " "}, "name must be a non-empty string"),
        (
            {"previous_secret_expires_at": "2026-12-31T12:00:00Z"},
            "previous_secret_expires_at applies to state=rotated only, not state=present",
        ),
        (
            {"state": "rotated", "previous_secret_expires_at": "tomorrow"},
            "previous_secret_expires_at 'tomorrow' is not an RFC 3339 time",
        ),
        ({"zone_id": "z"}, "parameters are mutually exclusive: account_id|zone_id"),
        ({"account_id": None}, "give exactly one of account_id and zone_id"),
        ({"api_token": None, "api_key": "key-value-1"}, "api_key needs api_email (or CLOUDFLARE_EMAIL)"),
        (
            {"api_token": None},
            "no Cloudflare credentials: set api_token (or CLOUDFLARE_API_TOKEN), or api_key and api_email",
        ),
        (
            {"api_base_url": "api.cloudflare.com"},
            "api_base_url 'api.cloudflare.com' must be an http:// or https:// URL",
        ),
    ],
)
def test_argument_messages(api, capsys, monkeypatch, args, message):
    for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    full = dict(name="adapter", account_id=ACCOUNT)
    full.update(args)
    failed, result = run_module(capsys, **full)
    assert failed and message in result["msg"]
    assert api.requests == []


def test_credentials_from_the_environment(api, capsys, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_KEY", "env-key")
    monkeypatch.setenv("CLOUDFLARE_EMAIL", "ops@example.com")
    failed, result = run_module(capsys, name="adapter", account_id=ACCOUNT, api_token=None)
    assert not failed and result["secret_returned"]
    assert "env-key" not in json.dumps(result)


# -- states -----------------------------------------------------------------------------------------


def test_present_creates_once_then_changes_nothing(api, capsys, tmp_path):
    secret_file = tmp_path / "adapter.env"
    failed, first = run_module(capsys, diff=True, name="adapter", account_id=ACCOUNT, secret_file=str(secret_file))
    assert not failed and first["changed"] and first["secret_returned"]
    assert first["client_secret"] == "secret-1" and first["client_id"].endswith(".access")
    assert "client_secret" not in first["service_token"]
    assert first["diff"]["before"] == {} and "secret-1" not in json.dumps(first["diff"])
    assert first["secret_file_written"]
    assert secret_file.read_text() == "CF_ACCESS_CLIENT_ID=%s\nCF_ACCESS_CLIENT_SECRET=secret-1\n" % first["client_id"]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert api.writes() == [("POST", "/accounts/%s/access/service_tokens" % ACCOUNT)]

    failed, second = run_module(capsys, name="adapter", account_id=ACCOUNT, secret_file=str(secret_file))
    assert not failed and not second["changed"]
    assert second["client_secret"] == "" and second["secret_returned"] is False and not second["secret_file_written"]
    assert second["client_id"] == first["client_id"]
    assert len(api.writes()) == 1
    assert "secret-1" in secret_file.read_text()


def test_a_changed_duration_is_updated_without_a_new_secret(api, capsys):
    run_module(capsys, name="adapter", account_id=ACCOUNT, duration="8760h")
    failed, same = run_module(capsys, name="adapter", account_id=ACCOUNT, duration="525600m")
    assert not failed and not same["changed"]
    failed, result = run_module(capsys, diff=True, name="adapter", account_id=ACCOUNT, duration="24h")
    assert not failed and result["changed"] and not result["secret_returned"] and result["client_secret"] == ""
    assert result["diff"]["before"]["duration"] == "8760h" and result["diff"]["after"]["duration"] == "24h"
    assert api.requests[-1][0] == "PUT" and api.requests[-1][2] == {"duration": "24h"}


def test_rotated_returns_a_new_secret_and_rewrites_the_file(api, capsys, tmp_path):
    secret_file = tmp_path / "adapter.json"
    _failed, created = run_module(capsys, name="adapter", account_id=ACCOUNT)
    failed, rotated = run_module(
        capsys,
        name="adapter",
        account_id=ACCOUNT,
        state="rotated",
        secret_file=str(secret_file),
        secret_file_format="json",
        previous_secret_expires_at="2026-12-31T12:00:00Z",
    )
    assert not failed and rotated["changed"] and rotated["client_secret"] == "secret-2"
    assert rotated["client_id"] == created["client_id"]
    assert json.loads(secret_file.read_text()) == {"client_id": created["client_id"], "client_secret": "secret-2"}
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    method, path, body = api.requests[-1]
    assert (method, path.rsplit("/", 1)[1], body) == (
        "POST",
        "rotate",
        {"previous_client_secret_expires_at": "2026-12-31T12:00:00Z"},
    )


def test_zone_scope_rotates_by_secret_version_and_refreshes_by_duration(api, capsys):
    run_module(capsys, name="adapter", zone_id="z1", duration="48h")
    failed, rotated = run_module(capsys, name="adapter", zone_id="z1", state="rotated")
    assert not failed and rotated["client_secret"] == "secret-2"
    assert api.requests[-1][0] == "PUT" and api.requests[-1][2] == {"client_secret_version": 2}
    failed, refreshed = run_module(capsys, name="adapter", zone_id="z1", state="refreshed")
    assert not failed and refreshed["changed"] and not refreshed["secret_returned"]
    assert api.requests[-1][0] == "PUT" and api.requests[-1][2] == {"duration": "48h"}


def test_refreshed_extends_the_expiry(api, capsys):
    run_module(capsys, name="adapter", account_id=ACCOUNT)
    failed, result = run_module(capsys, diff=True, name="adapter", account_id=ACCOUNT, state="refreshed")
    assert not failed and result["changed"] and result["client_secret"] == ""
    assert result["service_token"]["expires_at"] == "2028-12-04T00:00:00Z"
    assert result["diff"]["before"]["expires_at"] != result["diff"]["after"]["expires_at"]
    assert api.requests[-1][1].endswith("/refresh")


def test_absent_deletes_and_then_changes_nothing(api, capsys):
    run_module(capsys, name="adapter", account_id=ACCOUNT)
    failed, result = run_module(capsys, name="adapter", account_id=ACCOUNT, state="absent")
    assert not failed and result["changed"] and result["service_token"] == {} and api.tokens == []
    failed, again = run_module(capsys, name="adapter", account_id=ACCOUNT, state="absent")
    assert not failed and not again["changed"]


@pytest.mark.parametrize("state", ["present", "rotated", "refreshed", "absent"])
def test_check_mode_sends_no_writing_request_and_returns_no_secret(api, capsys, tmp_path, state):
    run_module(capsys, name="other", account_id=ACCOUNT)
    if state != "present":
        run_module(capsys, name="adapter", account_id=ACCOUNT)
    before = len(api.writes())
    secret_file = tmp_path / "s"
    failed, result = run_module(
        capsys, check_mode=True, name="adapter", account_id=ACCOUNT, state=state, secret_file=str(secret_file)
    )
    assert not failed and result["changed"]
    assert len(api.writes()) == before and result["client_secret"] == "" and not secret_file.exists()


def test_two_tokens_with_the_name_fail_naming_both_ids(api, capsys):
    api.tokens = [
        {"id": "id-1", "name": "adapter", "client_id": "a.access", "client_secret_version": 1},
        {"id": "id-2", "name": "adapter", "client_id": "b.access", "client_secret_version": 1},
    ]
    failed, result = run_module(capsys, name="adapter", account_id=ACCOUNT)
    assert failed
    assert "2 Access service tokens are named 'adapter' in account %s (ids id-1, id-2)" % ACCOUNT in result["msg"]


def test_an_unwritable_secret_file_fails_but_hands_back_the_secret(api, capsys, tmp_path):
    failed, result = run_module(capsys, name="adapter", account_id=ACCOUNT, secret_file=str(tmp_path / "missing" / "f"))
    assert failed and result["client_secret"] == "secret-1"
    assert "could not be written" in result["msg"] and "secret-1" not in result["msg"]


def test_api_errors_are_quoted(monkeypatch, capsys):
    def refuse(method, url, headers, data, timeout, validate_certs):
        doc = {
            "success": False,
            "errors": [{"code": 7003, "message": "Could not route to /accounts/bad"}],
            "messages": [],
            "result": None,
        }
        return 404, {}, json.dumps(doc).encode()

    monkeypatch.setattr(cloudflare, "urls_transport", refuse)
    failed, result = run_module(capsys, name="adapter", account_id="bad")
    assert failed and result["status"] == 404 and result["codes"] == [7003]
    assert result["msg"] == (
        "service token 'adapter': Cloudflare API GET /accounts/bad/access/service_tokens failed: HTTP 404; "
        "7003 Could not route to /accounts/bad"
    )


def test_secret_file_write_is_atomic_and_private(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    os.chmod(target, 0o644)
    module.write_secret_file(str(target), "new\n")
    assert target.read_text() == "new\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["f"]
