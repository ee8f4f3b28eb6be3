# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.cloudflare_access_service_token run by ansible-playbook against the Cloudflare emulator
(tests/support/cloudflare_emulator.py; never the real API). Unless a test sets api_base_url, the module uses its
default https://api.cloudflare.com/client/v4 and reaches the emulator through HTTPS_PROXY with the emulator's test CA
in SSL_CERT_FILE (cf_play's environment), so the proxy and certificate handling of the client runs too."""

from __future__ import annotations

import stat

MODULE = "cloudflare_access_service_token"
NAME = "ls-triton-adapter"


def token_args(emulator, **extra) -> dict:
    args = {"name": NAME, "account_id": emulator.account_id, "api_token": emulator.api_token}
    args.update(extra)
    return args


def writes(emulator, since: int = 0) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emulator.requests[since:] if r["method"] != "GET"]


def tokens_named(emulator, name: str = NAME) -> list[dict]:
    return [t for t in emulator.state()["service_tokens"] if t["name"] == name]


def ok(result: dict) -> dict:
    assert result.get("failed") is not True, result
    return result


def test_create_returns_the_secret_once_and_a_second_present_changes_nothing(emulator, cf_play, tmp_path):
    secret_file = tmp_path / "adapter.env"
    first = ok(cf_play([(MODULE, token_args(emulator, secret_file=str(secret_file)))])[0])
    assert first["changed"] is True and first["secret_returned"] is True
    secret, client_id = first["client_secret"], first["client_id"]
    assert secret and client_id.endswith(".access")
    assert "client_secret" not in first["service_token"]
    assert secret not in str(first["diff"])
    assert secret_file.read_text() == f"CF_ACCESS_CLIENT_ID={client_id}\nCF_ACCESS_CLIENT_SECRET={secret}\n"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    [token] = tokens_named(emulator)
    assert token["client_id"] == client_id and token["duration"] == "8760h"
    assert writes(emulator) == [("POST", f"/accounts/{emulator.account_id}/access/service_tokens")]

    mark = len(emulator.requests)
    second = ok(cf_play([(MODULE, token_args(emulator, secret_file=str(secret_file)))])[0])
    assert second["changed"] is False
    assert second["client_secret"] == "" and second["secret_returned"] is False
    assert second["client_id"] == client_id and second["service_token"]["id"] == token["id"]
    assert writes(emulator, mark) == []
    assert secret_file.read_text().endswith(f"={secret}\n")


def test_rotated_gives_a_new_secret_for_the_same_client_id_and_rewrites_the_file(emulator, cf_play, tmp_path):
    secret_file = tmp_path / "adapter.json"
    args = token_args(emulator, secret_file=str(secret_file), secret_file_format="json")
    created = ok(cf_play([(MODULE, args)])[0])
    secret_file.chmod(0o644)  # the rewrite must bring it back to 0600
    mark = len(emulator.requests)
    rotated = ok(cf_play([(MODULE, dict(args, state="rotated"))])[0])
    assert rotated["changed"] is True and rotated["secret_returned"] is True
    assert rotated["client_secret"] and rotated["client_secret"] != created["client_secret"]
    assert rotated["client_id"] == created["client_id"]
    assert secret_file.read_text().count(rotated["client_secret"]) == 1
    assert created["client_secret"] not in secret_file.read_text()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    token_id = created["service_token"]["id"]
    assert writes(emulator, mark) == [
        ("POST", f"/accounts/{emulator.account_id}/access/service_tokens/{token_id}/rotate")
    ]
    again = ok(cf_play([(MODULE, dict(args, state="rotated"))])[0])
    assert again["changed"] is True and again["client_secret"] not in (rotated["client_secret"], "")


def test_refreshed_moves_the_expiry_and_returns_no_secret(emulator, cf_play):
    created = ok(cf_play([(MODULE, token_args(emulator, duration="24h"))])[0])
    refreshed = ok(cf_play([(MODULE, token_args(emulator, state="refreshed"))])[0])
    assert refreshed["changed"] is True and refreshed["client_secret"] == ""
    assert refreshed["service_token"]["expires_at"] > created["service_token"]["expires_at"]
    assert refreshed["diff"]["before"]["expires_at"] != refreshed["diff"]["after"]["expires_at"]


def test_a_changed_duration_is_put_without_a_new_secret(emulator, cf_play):
    ok(cf_play([(MODULE, token_args(emulator, duration="8760h"))])[0])
    mark = len(emulator.requests)
    same = ok(cf_play([(MODULE, token_args(emulator, duration="525600m"))])[0])
    assert same["changed"] is False and writes(emulator, mark) == []
    changed = ok(cf_play([(MODULE, token_args(emulator, duration="48h"))])[0])
    assert changed["changed"] is True and changed["client_secret"] == ""
    assert changed["diff"]["before"]["duration"] == "8760h" and changed["diff"]["after"]["duration"] == "48h"
    assert tokens_named(emulator)[0]["duration"] == "48h"


def test_absent_deletes_then_changes_nothing(emulator, cf_play):
    ok(cf_play([(MODULE, token_args(emulator))])[0])
    gone = ok(cf_play([(MODULE, token_args(emulator, state="absent"))])[0])
    assert gone["changed"] is True and tokens_named(emulator) == []
    again = ok(cf_play([(MODULE, token_args(emulator, state="absent"))])[0])
    assert again["changed"] is False


def test_the_global_key_and_email_style_works_too(emulator, cf_play):
    args = {
        "name": NAME,
        "account_id": emulator.account_id,
        "api_key": emulator.api_key,
        "api_email": emulator.api_email,
    }
    created = ok(cf_play([(MODULE, args)])[0])
    assert created["changed"] is True and created["secret_returned"] is True
    mark = len(emulator.requests)
    assert ok(cf_play([(MODULE, args)])[0])["changed"] is False
    assert writes(emulator, mark) == []


def test_credentials_from_the_environment_and_the_plain_http_base_url(emulator, cf_play):
    args = {"name": NAME, "account_id": emulator.account_id, "api_base_url": emulator.url}
    created = ok(cf_play([(MODULE, args)], env={"CLOUDFLARE_API_TOKEN": emulator.api_token})[0])
    assert created["changed"] is True and tokens_named(emulator)


def test_a_zone_scoped_token_is_rotated_by_its_secret_version(emulator, cf_play):
    args = {"name": NAME, "zone_id": emulator.zone_id, "api_token": emulator.api_token}
    created = ok(cf_play([(MODULE, args)])[0])
    rotated = ok(cf_play([(MODULE, dict(args, state="rotated"))])[0])
    assert rotated["client_secret"] and rotated["client_secret"] != created["client_secret"]
    assert rotated["service_token"]["client_secret_version"] == 2
    assert emulator.requests[-1]["method"] == "PUT"
    assert emulator.requests[-1]["path"].startswith(f"/zones/{emulator.zone_id}/access/service_tokens/")


def test_429_answers_are_retried_transparently(emulator, cf_play):
    emulator.rate_limit_every = 2
    results = cf_play(
        [
            (MODULE, token_args(emulator)),
            (MODULE, token_args(emulator, state="rotated")),
            (MODULE, token_args(emulator)),
        ]
    )
    assert [ok(r)["changed"] for r in results] == [True, True, False]
    statuses = [r["status"] for r in emulator.requests]
    assert statuses.count(429) >= 2
    assert len(tokens_named(emulator)) == 1


def test_a_bad_account_id_quotes_cloudflares_code_and_message(emulator, cf_play):
    bad = "0" * 32
    result = cf_play([(MODULE, token_args(emulator, account_id=bad))])[0]
    assert result["failed"] is True
    assert result["msg"].startswith(
        f"service token '{NAME}': Cloudflare API GET /accounts/{bad}/access/service_tokens failed: HTTP 404; 7003 "
    )
    assert result["codes"] == [7003] and result["status"] == 404
    assert emulator.api_token not in result["msg"]


def test_a_wrong_api_token_fails_with_the_authentication_error(emulator, cf_play):
    result = cf_play([(MODULE, token_args(emulator, api_token="not-the-token"))])[0]
    assert result["failed"] is True and result["status"] in (401, 403)
    assert "Cloudflare API GET /accounts/" in result["msg"] and "not-the-token" not in str(result)


def test_check_mode_sends_no_writing_request(emulator, cf_play, tmp_path):
    secret_file = tmp_path / "s.env"
    for state in ("present", "rotated", "refreshed", "absent"):  # no token yet: the first three would create it
        result = ok(cf_play([(MODULE, token_args(emulator, state=state, secret_file=str(secret_file)))], check=True)[0])
        assert result["changed"] is (state != "absent") and result["client_secret"] == ""
    ok(cf_play([(MODULE, token_args(emulator))])[0])
    mark = len(emulator.requests)
    for state in ("rotated", "refreshed", "absent"):
        result = ok(cf_play([(MODULE, token_args(emulator, state=state))], check=True)[0])
        assert result["changed"] is True and result["client_secret"] == ""
    assert writes(emulator, mark) == []
    assert not secret_file.exists()
    assert [r["method"] for r in emulator.requests[:mark]].count("POST") == 1


def test_no_secret_at_vvv_with_no_log(emulator, cf_play, tmp_path):
    secret_file = tmp_path / "adapter.env"
    task = {
        "name": "service token",
        f"oceanid.fleet.{MODULE}": {"name": NAME, "account_id": emulator.account_id, "secret_file": str(secret_file)},
        "no_log": True,
        "register": "adapter_token",
    }
    check = {"name": "got a secret", "ansible.builtin.assert": {"that": ["adapter_token.secret_returned"]}}
    for state in ("present", "rotated"):
        task[f"oceanid.fleet.{MODULE}"]["state"] = state
        # the API token comes from the environment, so that the playbook file written here does not hold it
        run = cf_play([task, check], verbosity=3, json_output=False, env={"CLOUDFLARE_API_TOKEN": emulator.api_token})
        assert run.rc == 0, run.stdout + run.stderr
        secret = secret_file.read_text().split("CF_ACCESS_CLIENT_SECRET=")[1].strip()
        output = run.stdout + run.stderr
        assert secret not in output
        assert emulator.api_token not in output
        assert "censored" in output
        leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p != secret_file]
        for path in leftovers:
            text = path.read_text(errors="replace")
            assert secret not in text and emulator.api_token not in text, path
