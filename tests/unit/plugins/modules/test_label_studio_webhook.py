# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""label_studio_webhook's comparison: what counts as a change (the module runs for real in tests/integration)."""

from __future__ import annotations

from ansible_collections.oceanid.fleet.plugins.modules.label_studio_webhook import _hidden, _state

STORED = {
    "id": 4,
    "project": 1,
    "url": "http://sink/ingest",
    "send_for_all_actions": False,
    "actions": ["TASKS_CREATED", "ANNOTATION_CREATED"],
    "headers": {"X-A": "1"},
    "send_payload": True,
    "is_active": True,
    "created_at": "2026-01-01",
}


def test_actions_compare_as_sets_and_all_actions_ignore_the_list():
    state = _state(STORED)
    assert state["actions"] == ["ANNOTATION_CREATED", "TASKS_CREATED"]
    assert "created_at" not in state and "id" not in state
    every = _state(dict(STORED, send_for_all_actions=True))
    assert every["actions"] == [] and every["send_for_all_actions"] is True


def test_headers_compare_exactly_and_are_hidden_in_output():
    assert _state(STORED) != _state(dict(STORED, headers={"X-A": "2"}))
    assert _state(STORED) != _state(dict(STORED, headers={"X-A": "1", "X-B": "1"}))
    assert _hidden(_state(STORED), 1, 4)["headers"] == {"X-A": "********"}
    assert _hidden(_state(STORED), 1, 4)["id"] == 4
