# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The `validate:` command of the triton_server role's config.pbtxt task, run as Ansible runs it.

On native hosts the role checks every rendered configuration with Triton's own ModelConfig message
(`_triton_server_config_check` in vars/main.yml) before it replaces the file. Here the command runs with
this virtualenv standing in for the runtime's (both carry tritonclient and protobuf): a valid configuration
is written, an invalid one fails the task and leaves the previous file as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROLE = Path(__file__).resolve().parents[3] / "roles" / "triton_server"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))

GOOD = 'name: "tiny"\nbackend: "python"\nmax_batch_size: 0\ninstance_group [ { kind: KIND_CPU, count: 1 } ]\n'
# KIND_TPU is not a ModelInstanceGroup.Kind: Triton would refuse to load the model.
BAD = 'name: "tiny"\nbackend: "python"\ninstance_group [ { kind: KIND_TPU } ]\n'


def write_config(tmp_path: Path, env: dict, content: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "write.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  vars_files: ["{ROLE}/defaults/main.yml", "{ROLE}/vars/main.yml"]
  tasks:
    - ansible.builtin.copy:
        content: "{{{{ content }}}}"
        dest: "{tmp_path}/config.pbtxt"
        mode: "0644"
        validate: "{{{{ _triton_server_config_check }}}}"
""",
        encoding="utf-8",
    )
    extra = {"content": content, "triton_server_native_venv": sys.prefix}
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"]
        + [str(playbook), "--extra-vars", json.dumps(extra)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_valid_configuration_is_written(tmp_path, clean_ansible_env):
    result = write_config(tmp_path, clean_ansible_env, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "config.pbtxt").read_text(encoding="utf-8") == GOOD


def test_an_invalid_configuration_fails_and_keeps_the_previous_file(tmp_path, clean_ansible_env):
    assert write_config(tmp_path, clean_ansible_env, GOOD).returncode == 0
    result = write_config(tmp_path, clean_ansible_env, BAD)
    assert result.returncode != 0
    assert "failed to validate" in result.stdout
    assert "KIND_TPU" in result.stdout  # the parser's own reason reaches the user
    assert (tmp_path / "config.pbtxt").read_text(encoding="utf-8") == GOOD
