# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real bundled community.general.cloudflare_dns (fixed endpoint https://api.cloudflare.com/client/v4, verified
TLS) against the Cloudflare emulator through HTTPS_PROXY: the edge layer's CNAME gpu.oceanid.example ->
<tunnel id>.cfargotunnel.com, proxied. Nothing here reaches Cloudflare."""

from __future__ import annotations

import uuid

import pytest

ZONE = "oceanid.example"
RECORD = "gpu.oceanid.example"


@pytest.fixture
def target() -> str:
    return f"{uuid.uuid4()}.cfargotunnel.com"


def cname(emulator, value: str, **extra) -> tuple[str, dict]:
    args = {
        "zone": ZONE,
        "record": "gpu",
        "type": "CNAME",
        "value": value,
        "proxied": True,
        "api_token": emulator.api_token,
    }
    args.update(extra)
    return "community.general.cloudflare_dns", args


def writes(emulator, since: int) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emulator.requests[since:] if r["method"] != "GET"]


def records(emulator) -> list[dict]:
    return [r for r in emulator.state()["dns_records"] if r["name"] == RECORD]


def test_create_then_unchanged_without_a_write(emulator, cf_play, target):
    first = cf_play([cname(emulator, target)])
    assert first[0].get("failed") is not True, first[0]
    assert first[0]["changed"] is True
    [record] = records(emulator)
    assert (record["type"], record["content"], record["proxied"], record["ttl"]) == ("CNAME", target, True, 1)
    assert [method for method, _path in writes(emulator, 0)] == ["POST"]

    mark = len(emulator.requests)
    second = cf_play([cname(emulator, target)])
    assert second[0].get("failed") is not True, second[0]
    assert second[0]["changed"] is False
    assert writes(emulator, mark) == []
    assert len(records(emulator)) == 1


def test_a_new_target_is_updated_with_put(emulator, cf_play, target):
    cf_play([cname(emulator, target)])
    [before] = records(emulator)
    new_target = f"{uuid.uuid4()}.cfargotunnel.com"
    mark = len(emulator.requests)
    result = cf_play([cname(emulator, new_target)])
    assert result[0].get("failed") is not True, result[0]
    assert result[0]["changed"] is True
    assert writes(emulator, mark) == [("PUT", f"/zones/{emulator.zone_id}/dns_records/{before['id']}")]
    [after] = records(emulator)
    assert (after["id"], after["content"], after["proxied"]) == (before["id"], new_target, True)


def test_check_mode_makes_only_gets(emulator, cf_play, target):
    mark = len(emulator.requests)
    result = cf_play([cname(emulator, target)], check=True)
    assert result[0].get("failed") is not True, result[0]
    assert result[0]["changed"] is True
    assert emulator.requests[mark:], "check mode asked nothing"
    assert writes(emulator, mark) == []
    assert records(emulator) == []


def test_state_absent_deletes(emulator, cf_play, target):
    cf_play([cname(emulator, target)])
    [record] = records(emulator)
    mark = len(emulator.requests)
    result = cf_play([cname(emulator, target, state="absent")])
    assert result[0].get("failed") is not True, result[0]
    assert result[0]["changed"] is True
    assert writes(emulator, mark) == [("DELETE", f"/zones/{emulator.zone_id}/dns_records/{record['id']}")]
    assert records(emulator) == []
    again = cf_play([cname(emulator, target, state="absent")])
    assert again[0]["changed"] is False


def test_an_existing_record_of_that_name_is_updated_not_a_failure(emulator, cf_play, target):
    """The seed's "Cloudflare record exists" pain: a CNAME made by hand earlier (old target, not proxied)."""
    old = emulator.seed_dns_record(type="CNAME", name=RECORD, content="old-tunnel.cfargotunnel.com", ttl=1)
    mark = len(emulator.requests)
    result = cf_play([cname(emulator, target)])
    assert result[0].get("failed") is not True, result[0]
    assert result[0]["changed"] is True
    assert writes(emulator, mark) == [("PUT", f"/zones/{emulator.zone_id}/dns_records/{old['id']}")]
    [record] = records(emulator)
    assert (record["id"], record["content"], record["proxied"]) == (old["id"], target, True)


def test_key_and_email_auth_and_a_wrong_token(emulator, cf_play, target):
    task = cname(emulator, target, api_token=None, account_email=emulator.api_email, account_api_key=emulator.api_key)
    task[1].pop("api_token")
    ok = cf_play([task])
    assert ok[0].get("failed") is not True, ok[0]
    assert ok[0]["changed"] is True
    bad = cf_play([cname(emulator, target, api_token="not-the-token")])
    assert bad[0]["failed"] is True
    assert "10000" in bad[0]["msg"] and "Authentication error" in bad[0]["msg"], bad[0]["msg"]


def test_the_api_token_is_not_in_verbose_output(emulator, cf_play, target):
    """The module marks api_token no_log: at -vvv neither the invocation nor anything else shows it."""
    module, args = cname(emulator, target)
    result = cf_play([{"name": "cname", module: args}], verbosity=3, json_output=False)
    assert result.rc == 0, result.stdout[-3000:]
    assert "gpu.oceanid.example" in result.stdout
    assert emulator.api_token not in result.stdout + result.stderr
