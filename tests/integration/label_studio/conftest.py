# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the label_studio_* module tests: one real Label Studio for the session, ansible-playbook runs.

The server (tests/support/label_studio.py) starts in 30-90 s, so one serves every test; tests use their own project
titles so that they do not depend on each other's order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ansible_env import isolated_ansible_env, make_collection_importable
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


@dataclass
class PlayResult:
    rc: int
    results: list[dict]
    stdout: str
    stderr: str

    def __getitem__(self, index: int) -> dict:
        return self.results[index]


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
        playbook = self.workdir / f"play-{self.count}.yml"
        connection = {"url": self.server.url, "api_token": token or self.server.token}
        play = [
            {
                "name": "label studio",
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    {"name": f"step {n}", f"oceanid.fleet.{module}": dict(connection, **args), "ignore_errors": True}
                    for n, (module, args) in enumerate(tasks)
                ],
            }
        ]
        playbook.write_text(json.dumps(play, indent=2))
        env = isolated_ansible_env(
            self.workdir / "ansible",
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json" if json_output else "ansible.builtin.default",
        )
        command = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ]
        command += ["--check"] if check else []
        command += ["--diff"] if diff else []
        command += ["-" + "v" * verbosity] if verbosity else []
        out = subprocess.run(
            command, env=env, cwd=self.workdir, capture_output=True, text=True, timeout=600, check=False
        )
        if not json_output:
            return PlayResult(out.returncode, [], out.stdout, out.stderr)
        try:
            report = json.loads(out.stdout)
        except ValueError:
            raise AssertionError(f"no JSON from ansible-playbook (rc {out.returncode}):\n{out.stdout}\n{out.stderr}")
        results = [task["hosts"]["localhost"] for p in report["plays"] for task in p["tasks"]]
        return PlayResult(out.returncode, results, out.stdout, out.stderr)


@pytest.fixture
def play(label_studio, tmp_path) -> Play:
    return Play(tmp_path, label_studio)
