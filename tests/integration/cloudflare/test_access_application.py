# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.cloudflare_access_application (with cloudflare_access_service_token) run by ansible-playbook against
the Cloudflare emulator (tests/support/cloudflare_emulator.py; never the real API): the application admits exactly
the named service tokens, as the emulator's Access decision (emulator.access_allows) shows."""

from __future__ import annotations

import pytest

APP = "cloudflare_access_application"
TOKEN = "cloudflare_access_service_token"
HOST = "gpu.oceanid.example"


def scope(emulator, zone: bool) -> dict:
    if zone:
        return {"zone_id": emulator.zone_id, "api_token": emulator.api_token}
    return {"account_id": emulator.account_id, "api_token": emulator.api_token}


def app_args(emulator, zone=False, **extra) -> dict:
    args = {"name": "gpu-endpoint", "domain": HOST, "service_tokens": ["ls-triton-adapter"], **scope(emulator, zone)}
    args.update(extra)
    return args


def ok(result: dict) -> dict:
    assert result.get("failed") is not True, result
    return result


def writes(emulator, since: int = 0) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emulator.requests[since:] if r["method"] != "GET"]


def make_token(cf_play, emulator, name="ls-triton-adapter", zone=False) -> dict:
    result = ok(cf_play([(TOKEN, {"name": name, **scope(emulator, zone)})])[0])
    return result


def headers(token: dict) -> dict:
    return {"CF-Access-Client-Id": token["client_id"], "CF-Access-Client-Secret": token["client_secret"]}


@pytest.mark.parametrize("zone", [False, True], ids=["account", "zone"])
def test_the_application_admits_exactly_the_token_and_a_rerun_changes_nothing(emulator, cf_play, zone):
    adapter = make_token(cf_play, emulator, zone=zone)
    other = make_token(cf_play, emulator, name="someone-else", zone=zone)
    first = ok(cf_play([(APP, app_args(emulator, zone=zone))])[0])
    assert first["changed"] is True
    app = first["application"]
    assert app["id"] and len(app["aud"]) == 64 and app["domain"] == HOST and app["type"] == "self_hosted"
    [policy] = first["policies"]
    assert policy["decision"] == "non_identity"
    assert policy["include"] == [{"service_token": {"token_id": adapter["service_token"]["id"]}}]
    assert first["diff"]["before"] == {}
    assert first["diff"]["after"]["policies"][0]["service_tokens"] == ["ls-triton-adapter"]

    assert emulator.access_allows(HOST, headers(adapter)) is True
    assert emulator.access_allows(HOST, {}) is False
    assert emulator.access_allows(HOST, headers(other)) is False
    assert emulator.access_allows(HOST, dict(headers(adapter), **{"CF-Access-Client-Secret": "wrong"})) is False

    mark = len(emulator.requests)
    second = ok(cf_play([(APP, app_args(emulator, zone=zone))])[0])
    assert second["changed"] is False
    assert second["application"]["id"] == app["id"] and second["application"]["aud"] == app["aud"]
    assert writes(emulator, mark) == []
    state = emulator.state()
    assert len(state["access_apps"]) == 1 and len(state["access_policies"]) == 1


def test_a_changed_token_list_and_session_duration_update_in_place(emulator, cf_play):
    adapter = make_token(cf_play, emulator)
    ci = make_token(cf_play, emulator, name="ci")
    first = ok(cf_play([(APP, app_args(emulator))])[0])
    assert emulator.access_allows(HOST, headers(ci)) is False

    # the second token by its client id
    wider = ok(cf_play([(APP, app_args(emulator, service_tokens=["ls-triton-adapter", ci["client_id"]]))])[0])
    assert wider["changed"] is True
    assert wider["application"]["id"] == first["application"]["id"]
    assert wider["application"]["aud"] == first["application"]["aud"]
    assert wider["diff"]["before"]["policies"][0]["service_tokens"] == ["ls-triton-adapter"]
    assert wider["diff"]["after"]["policies"][0]["service_tokens"] == ["ci", "ls-triton-adapter"]
    assert emulator.access_allows(HOST, headers(ci)) is True and emulator.access_allows(HOST, headers(adapter)) is True
    assert len(emulator.state()["access_policies"]) == 1

    longer = ok(cf_play([(APP, app_args(emulator, service_tokens=["ci"], session_duration="12h"))])[0])
    assert longer["changed"] is True
    assert (longer["diff"]["before"]["session_duration"], longer["diff"]["after"]["session_duration"]) == ("24h", "12h")
    assert longer["application"]["session_duration"] == "12h"
    assert emulator.access_allows(HOST, headers(adapter)) is False and emulator.access_allows(HOST, headers(ci)) is True
    mark = len(emulator.requests)
    assert (
        ok(cf_play([(APP, app_args(emulator, service_tokens=["ci"], session_duration="720m"))])[0])["changed"] is False
    )
    assert writes(emulator, mark) == []


def test_a_rotated_token_admits_only_its_new_secret(emulator, cf_play):
    adapter = make_token(cf_play, emulator)
    ok(cf_play([(APP, app_args(emulator))])[0])
    rotated = ok(cf_play([(TOKEN, {"name": "ls-triton-adapter", "state": "rotated", **scope(emulator, False)})])[0])
    assert emulator.access_allows(HOST, headers(rotated)) is True
    assert emulator.access_allows(HOST, headers(adapter)) is False
    mark = len(emulator.requests)
    assert ok(cf_play([(APP, app_args(emulator))])[0])["changed"] is False
    assert writes(emulator, mark) == []


def test_a_missing_token_fails_before_any_change(emulator, cf_play):
    make_token(cf_play, emulator)
    mark = len(emulator.requests)
    result = cf_play([(APP, app_args(emulator, service_tokens=["ls-triton-adapter", "nobody"]))])[0]
    assert result["failed"] is True
    assert result["msg"] == (
        "Access application 'gpu-endpoint': service_tokens: no Access service token named (or with the client id) "
        f"'nobody' in account {emulator.account_id}; the tokens there are: ls-triton-adapter"
    )
    assert writes(emulator, mark) == []


@pytest.mark.parametrize("zone", [False, True], ids=["account", "zone"])
def test_absent_deletes_the_application_and_its_policy(emulator, cf_play, zone):
    make_token(cf_play, emulator, zone=zone)
    ok(cf_play([(APP, app_args(emulator, zone=zone))])[0])
    gone = ok(cf_play([(APP, {"name": "gpu-endpoint", "state": "absent", **scope(emulator, zone)})])[0])
    assert gone["changed"] is True and gone["application"] == {}
    state = emulator.state()
    assert state["access_apps"] == [] and state["access_policies"] == []
    assert emulator.access_allows(HOST, {}) is True  # no application: Access no longer guards the hostname
    again = ok(cf_play([(APP, {"name": "gpu-endpoint", "state": "absent", **scope(emulator, zone)})])[0])
    assert again["changed"] is False


def test_check_mode_sends_no_writing_request(emulator, cf_play):
    make_token(cf_play, emulator)
    make_token(cf_play, emulator, name="ci")
    mark = len(emulator.requests)
    predicted = ok(cf_play([(APP, app_args(emulator))], check=True)[0])
    assert predicted["changed"] is True and writes(emulator, mark) == []
    assert emulator.state()["access_apps"] == []
    ok(cf_play([(APP, app_args(emulator))])[0])
    mark = len(emulator.requests)
    for args in (
        app_args(emulator, service_tokens=["ci"]),
        app_args(emulator, session_duration="1h"),
        {"name": "gpu-endpoint", "state": "absent", **scope(emulator, False)},
    ):
        assert ok(cf_play([(APP, args)], check=True)[0])["changed"] is True
    assert ok(cf_play([(APP, app_args(emulator))], check=True)[0])["changed"] is False
    assert writes(emulator, mark) == []


def test_429_answers_are_retried_transparently(emulator, cf_play):
    make_token(cf_play, emulator)
    emulator.rate_limit_every = 3
    results = cf_play([(APP, app_args(emulator)), (APP, app_args(emulator))])
    assert [ok(r)["changed"] for r in results] == [True, False]
    assert [r["status"] for r in emulator.requests].count(429) >= 1
    assert len(emulator.state()["access_apps"]) == 1
