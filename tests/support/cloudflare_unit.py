# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Cloudflare modules' unit tests share: v4-envelope answers for a fake transport, and main() run in-process."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

API_TOKEN = "api-token-not-a-secret-in-tests"
_JSON = {"Content-Type": "application/json"}


class FakeCloudflareBase:
    """The answer builders of a fake ``urls_transport``; subclasses record ``self.requests`` as (method, path, body)."""

    @staticmethod
    def _ok(result, status=200, info=None):
        doc = {"success": True, "errors": [], "messages": [], "result": result}
        if info:
            doc["result_info"] = info
        return status, _JSON, json.dumps(doc).encode()

    @staticmethod
    def _error(status, code, message):
        doc = {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
        return status, _JSON, json.dumps(doc).encode()

    def writes(self):
        return [(method, path) for method, path, _body in self.requests if method != "GET"]


def run_cloudflare_module(module, capsys, check_mode=False, diff=False, **args):
    """Run ``module.main()`` with these arguments (api_token defaulted); return (failed, result).

    Asserts that the API token never appears in the module's output."""
    args = dict(args)
    args.setdefault("api_token", API_TOKEN)
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = diff
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        pytest.raises(SystemExit) as exit_info,
    ):
        module.main()
    out = capsys.readouterr().out
    assert API_TOKEN not in out
    result = json.loads(out)
    assert bool(result.get("failed")) == (exit_info.value.code != 0)
    return bool(result.get("failed")), result
