# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""End to end: ansible-playbook on localhost with oceanid.fleet.drift_guard enabled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

PLAYBOOK = """\
- name: Converge a marker file
  hosts: all
  gather_facts: false
  tasks:
    - name: Write marker file
      ansible.builtin.copy:
        content: "converged\\n"
        dest: "{{ marker_path }}"
        mode: "0644"
"""

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-playbook is not beside this Python")


@pytest.fixture
def playbook(tmp_path):
    path = tmp_path / "converge.yml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    return path


@pytest.fixture
def run_playbook(tmp_path, playbook, clean_ansible_env):
    marker = tmp_path / "marker.txt"

    def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
        command = [
            str(ANSIBLE_PLAYBOOK),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            f"marker_path={marker}",
            str(playbook),
            *args,
        ]
        run_env = {**clean_ansible_env, "ANSIBLE_CALLBACKS_ENABLED": "oceanid.fleet.drift_guard", **env}
        return subprocess.run(
            command, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=120, check=False
        )

    _run.marker = marker
    return _run


def _output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def test_check_mode_fails_until_converged(run_playbook):
    drifted = run_playbook("--check")
    assert drifted.returncode == 2, _output(drifted)
    assert "drift_guard: 1 task(s) reported changes:\n  localhost: Write marker file" in _output(drifted)
    assert not run_playbook.marker.exists()

    converge = run_playbook()  # check_only: a real run is not guarded
    assert converge.returncode == 0, _output(converge)
    assert "changed=1" in converge.stdout
    assert "drift_guard" not in _output(converge)

    converged = run_playbook("--check")
    assert converged.returncode == 0, _output(converged)
    assert "changed=0" in converged.stdout
    assert "drift_guard" not in _output(converged)


def test_always_mode_fails_a_real_run_that_changes(run_playbook):
    changed = run_playbook(OCEANID_DRIFT_GUARD="always")
    assert changed.returncode == 2, _output(changed)
    assert "localhost: Write marker file" in _output(changed)

    idempotent = run_playbook(OCEANID_DRIFT_GUARD="always")
    assert idempotent.returncode == 0, _output(idempotent)


def test_invalid_mode_stops_before_the_first_task(run_playbook):
    proc = run_playbook(OCEANID_DRIFT_GUARD="sometimes")
    assert proc.returncode == 1, _output(proc)
    assert "drift_guard: invalid configuration" in _output(proc)
    assert "TASK [Write marker file]" not in proc.stdout
    assert not run_playbook.marker.exists()
