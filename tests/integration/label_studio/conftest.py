# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the label_studio_* module tests: one real Label Studio for the session, ansible-playbook runs.

The server (tests/support/label_studio.py) starts in 30-90 s, so one serves every test; tests use their own project
titles so that they do not depend on each other's order.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.ansible_env import PlayResult, make_collection_importable, run_local_play
from tests.support.label_studio import FakeMLBackend, LabelStudio

COLLECTIONS_PATH = make_collection_importable()


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    server = LabelStudio(tmp_path_factory.mktemp("label-studio"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ml_backend():
    backend = FakeMLBackend().start()
    yield backend
    backend.stop()


@pytest.fixture
def title() -> str:
    """A fresh project title (3..50 characters)."""
    return "t-" + uuid.uuid4().hex[:12]


class Play:
    """Tasks of the label_studio_* modules on localhost, each ignore_errors, run by ansible-playbook."""

    def __init__(self, workdir: Path, server: LabelStudio):
        self.workdir = workdir
        self.server = server
        self.count = 0

    def __call__(
        self,
        tasks: list[tuple[str, dict]],
        check: bool = False,
        diff: bool = True,
        token: str | None = None,
        verbosity: int = 0,
        json_output: bool = True,
    ) -> PlayResult:
        self.count += 1
        connection = {"url": self.server.url, "api_token": token or self.server.token}
        tasks_ = [
            {"name": f"step {n}", f"oceanid.fleet.{module}": dict(connection, **args), "ignore_errors": True}
            for n, (module, args) in enumerate(tasks)
        ]
        return run_local_play(
            self.workdir,
            "label studio",
            tasks_,
            check=check,
            diff=diff,
            verbosity=verbosity,
            json_output=json_output,
            count=self.count,
        )


@pytest.fixture
def play(label_studio, tmp_path) -> Play:
    return Play(tmp_path, label_studio)
