# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloudflare_access_application: argument messages, token resolution and what counts as a change. The module's
requests run against the Cloudflare emulator in tests/integration/cloudflare/test_access_application.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import cloudflare
from ansible_collections.oceanid.fleet.plugins.modules import cloudflare_access_application as module
from tests.support.cloudflare_unit import run_cloudflare_module

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKENS = [
    {"id": "t-1", "name": "adapter", "client_id": "aaaa.access"},
    {"id": "t-2", "name": "ci", "client_id": "bbbb.access"},
    {"id": "t-3", "name": "twin", "client_id": "cccc.access"},
    {"id": "t-4", "name": "twin", "client_id": "dddd.access"},
]


def run_module(capsys, **args):
    return run_cloudflare_module(module, capsys, **args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"domain": None}, "domain is required with state=present: the hostname to protect, e.g. gpu.oceanid.example"),
        (
            {"domain": "https://gpu.oceanid.example"},
            "domain 'https://gpu.oceanid.example' must be a hostname with an optional path and no scheme",
        ),
        (
            {"service_tokens": []},
            "service_tokens must list at least one service token (name or client id) with state=present",
        ),
        ({"service_tokens": None}, "service_tokens must list at least one service token"),
        ({"session_duration": "1d"}, "session_duration '1d' is not a Go duration such as 24h or 30m"),
        ({"account_id": ""}, "give exactly one of account_id and zone_id (the application's account, or its zone)"),
    ],
)
def test_argument_messages(capsys, monkeypatch, args, message):
    def no_requests(*a, **k):
        raise AssertionError("no request expected")

    monkeypatch.setattr(cloudflare, "urls_transport", no_requests)
    full = {"name": "gpu", "account_id": ACCOUNT, "domain": "gpu.oceanid.example", "service_tokens": ["adapter"]}
    full.update(args)
    failed, result = run_module(capsys, **full)
    assert failed and message in result["msg"], result["msg"]


def test_absent_needs_no_domain_nor_tokens():
    assert (
        module.validate_params({"name": "gpu", "account_id": ACCOUNT, "state": "absent", "session_duration": "24h"})
        == []
    )


def test_tokens_resolve_by_name_or_client_id_in_the_given_order_without_duplicates():
    assert module.resolve_tokens(TOKENS, ["ci", "aaaa.access", "adapter"], "account a") == ["t-2", "t-1"]


def test_missing_tokens_are_named_with_what_exists():
    with pytest.raises(ValueError) as caught:
        module.resolve_tokens(TOKENS, ["adapter", "nope", "eeee.access"], "account a")
    assert str(caught.value) == (
        "service_tokens: no Access service token named (or with the client id) 'nope', 'eeee.access' in account a; "
        "the tokens there are: adapter, ci, twin, twin"
    )


def test_an_ambiguous_token_name_fails_but_its_client_id_works():
    with pytest.raises(ValueError, match=r"2 Access service tokens are named 'twin' in account a \(ids t-3, t-4\)"):
        module.resolve_tokens(TOKENS, ["twin"], "account a")
    assert module.resolve_tokens(TOKENS, ["dddd.access"], "account a") == ["t-4"]


def test_policy_comparison():
    wanted = module.policy_body("gpu service auth", ["t-1", "t-2"])
    assert wanted == {
        "name": "gpu service auth",
        "decision": "non_identity",
        "include": [{"service_token": {"token_id": "t-1"}}, {"service_token": {"token_id": "t-2"}}],
    }
    stored = dict(wanted, id="p", include=list(reversed(wanted["include"])), exclude=[], require=[], precedence=1)
    assert module.policy_matches(stored, "gpu service auth", ["t-1", "t-2"])
    assert not module.policy_matches(stored, "gpu service auth", ["t-1"])
    assert not module.policy_matches(dict(stored, decision="allow"), "gpu service auth", ["t-1", "t-2"])
    assert not module.policy_matches(dict(stored, require=[{"everyone": {}}]), "gpu service auth", ["t-1", "t-2"])
    other_rule = dict(stored, include=[{"any_valid_service_token": {}}])
    assert module.token_ids_of(other_rule) is None
    assert not module.policy_matches(other_rule, "gpu service auth", ["t-1", "t-2"])


def test_app_comparison_reads_durations_as_lengths():
    params = {"name": "gpu", "domain": "gpu.oceanid.example", "session_duration": "24h"}
    app = {"type": "self_hosted", "name": "gpu", "domain": "gpu.oceanid.example", "session_duration": "1440m"}
    assert module.app_matches(app, params)
    assert not module.app_matches(dict(app, domain="gpu2.oceanid.example"), params)
    assert not module.app_matches(dict(app, session_duration="12h"), params)
    assert module.app_body(params) == dict(params, type="self_hosted")


def test_diff_view_names_tokens():
    app = {"id": "a", "aud": "x", "name": "gpu", "domain": "gpu.oceanid.example", "session_duration": "24h"}
    policy = dict(module.policy_body("gpu service auth", ["t-2", "t-1"]), id="p")
    view = module._diff_view(app, [policy], {"t-1": "adapter", "t-2": "ci"})
    assert view == {
        "name": "gpu",
        "domain": "gpu.oceanid.example",
        "session_duration": "24h",
        "policies": [{"name": "gpu service auth", "decision": "non_identity", "service_tokens": ["adapter", "ci"]}],
    }
