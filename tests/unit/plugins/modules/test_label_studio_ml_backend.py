# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""label_studio_ml_backend's decisions with a fake client (the module runs for real in tests/integration)."""

from __future__ import annotations

import pytest

from ansible_collections.oceanid.fleet.plugins.modules.label_studio_ml_backend import MLBackendRunner

BACKEND = {
    "id": 7,
    "url": "http://adapter:9090",
    "project": 3,
    "title": "default",
    "description": "",
    "is_interactive": False,
    "timeout": 100.0,
    "extra_params": None,
    "state": "CO",
}


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = {
            "backend_url": "http://adapter:9090/",
            "state": "present",
            "title": "default",
            "description": None,
            "is_interactive": False,
            "timeout": None,
            "extra_params": None,
            "require_connected": True,
            **params,
        }
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **result):
        raise Failed(result)


class FakeClient:
    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def update_ml_backend(self, backend_id, body):
        self.calls.append(("update", backend_id, body))
        return dict(self.answer, **body)

    def create_ml_backend(self, body):
        self.calls.append(("create", body))
        return dict(self.answer, **body)


def runner(module, answer=None):
    r = MLBackendRunner(module)
    r.client, r.project_id = FakeClient(BACKEND if answer is None else answer), 3
    return r


def test_url_matches_without_trailing_slash_and_unchanged_is_not_a_change():
    r = runner(FakeModule())
    assert r.matches(BACKEND)
    r.present(BACKEND)
    assert not r.result["changed"] and r.client.calls == [] and r.result["ml_backend"]["state"] == "CO"


def test_an_update_sends_the_full_object_with_url_and_project():
    r = runner(FakeModule(title="adapter", timeout=12.5))
    r.present(BACKEND)
    assert r.result["changed"]
    (call,) = r.client.calls
    assert call[0] == "update" and call[1] == 7
    assert call[2] == {
        "url": "http://adapter:9090",
        "project": 3,
        "title": "adapter",
        "description": "",
        "is_interactive": False,
        "timeout": 12.5,
    }
    assert r.result["diff"]["before"]["title"] == "default" and r.result["diff"]["after"]["title"] == "adapter"


def test_check_mode_sends_nothing():
    r = runner(FakeModule(check_mode=True, is_interactive=True))
    r.present(BACKEND)
    assert r.result["changed"] and r.client.calls == [] and r.result["ml_backend"]["is_interactive"] is True
    r = runner(FakeModule(check_mode=True))
    r.present(None)
    assert r.result["changed"] and r.client.calls == []


def test_not_connected_fails_with_label_studios_error():
    r = runner(FakeModule(), dict(BACKEND, state="ER", error_message="Connection refused"))
    with pytest.raises(Failed) as failure:
        r.present(dict(BACKEND, state="ER", error_message="Connection refused"))
    assert "not connected (state ER: Connection refused)" in failure.value.args[0]["msg"]
    r = runner(FakeModule(require_connected=False))
    r.present(dict(BACKEND, state="ER"))
    assert not r.result["changed"]
