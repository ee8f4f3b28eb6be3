# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures; also makes this checkout importable as ``ansible_collections.oceanid.fleet``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible import context
from ansible.executor.stats import AggregateStats
from ansible.executor.task_result import TaskResult
from ansible.inventory.host import Host
from ansible.playbook.handler import Handler
from ansible.playbook.task import Task
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.context_objects import CLIArgs

from tests.support.ansible_env import isolated_ansible_env, link_collection

COLLECTION_ROOT = Path(__file__).resolve().parents[2]


def _collections_path() -> Path:
    """Return the directory that holds ``ansible_collections/oceanid/fleet`` for this checkout."""
    if COLLECTION_ROOT.parent.name == "oceanid" and COLLECTION_ROOT.parents[1].name == "ansible_collections":
        return COLLECTION_ROOT.parents[2]  # already laid out as a collection (ansible-test, an installed copy)
    return link_collection()


COLLECTIONS_PATH = _collections_path()


def pytest_configure():
    """Put the collection on sys.path and install ansible's collection loader, as the CLI does."""
    if str(COLLECTIONS_PATH) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS_PATH))
    init_plugin_loader([str(COLLECTIONS_PATH)])


class RecordingDisplay:
    """Stands in for ``ansible.utils.display.Display``; keeps what a plugin printed."""

    def __init__(self):
        self.errors: list[str] = []
        self.messages: list[str] = []

    def error(self, msg, wrap_text=True, stderr=True):  # pylint: disable=unused-argument
        self.errors.append(str(msg))

    def display(self, msg, *args, **kwargs):  # pylint: disable=unused-argument
        self.messages.append(str(msg))

    def __getattr__(self, name):
        # warning(), v(), vvv(), deprecated(), ...: accept and ignore
        return lambda *args, **kwargs: None


class FakeRole:
    """The part of ``ansible.playbook.role.Role`` that callbacks use."""

    def __init__(self, fqcn: str):
        self._fqcn = fqcn

    def get_name(self, include_role_fqcn: bool = True) -> str:
        return self._fqcn if include_role_fqcn else self._fqcn.rsplit(".", 1)[-1]


@pytest.fixture
def collections_path() -> Path:
    """The collections path for this checkout, for ANSIBLE_COLLECTIONS_PATH."""
    return COLLECTIONS_PATH


@pytest.fixture
def cliargs(monkeypatch):
    """Set the parsed command line that plugins read from ``ansible.context.CLIARGS``."""

    def _set(check: bool = False, playbooks: tuple[str, ...] = ("site.yml",)) -> None:
        monkeypatch.setattr(context, "CLIARGS", CLIArgs({"check": check, "args": list(playbooks)}))

    _set()
    return _set


@pytest.fixture
def make_result():
    """Build a real callback TaskResult for a host and a task."""

    def _make(
        host: str = "node1",
        task: str = "Write config",
        changed: bool = True,
        role: str | None = None,
        check_mode: bool = True,
        handler: bool = False,
        extra: dict | None = None,
    ) -> TaskResult:
        task_obj = Handler() if handler else Task()
        task_obj.name = task
        task_obj.check_mode = check_mode
        if role:
            task_obj._role = FakeRole(role)  # pylint: disable=protected-access
        return_data = {"changed": changed, **(extra or {})}
        return TaskResult(Host(host), task_obj, return_data, {"name": task})

    return _make


@pytest.fixture
def make_stats():
    """Build playbook stats; hosts given as ``{"node1": {"failures": 1}}``."""

    def _make(counts: dict[str, dict[str, int]] | None = None) -> AggregateStats:
        stats = AggregateStats()
        for host, per_host in (counts or {}).items():
            for what, count in per_host.items():
                for _increment in range(count):
                    stats.increment(what, host)
        return stats

    return _make


@pytest.fixture
def recording_display() -> RecordingDisplay:
    return RecordingDisplay()


@pytest.fixture
def clean_ansible_env(tmp_path) -> dict[str, str]:
    """An environment for running ansible-playbook unaffected by the caller's ansible settings."""
    return isolated_ansible_env(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH))
