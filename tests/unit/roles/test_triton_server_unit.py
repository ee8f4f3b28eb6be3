# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The docker runtime's unit, rendered by Ansible from the role's own template and variables.

The docker runtime cannot run on this machine (no Docker engine, no GPU, no registry), so its unit is
checked here: the exact `docker run` command line for given variables, and `systemd-analyze verify`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles" / "triton_server"
DOCKER = shutil.which("docker") or "/usr/bin/docker"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def render_unit(tmp_path: Path, env: dict, **overrides) -> str:
    """Render tritonserver.service.j2 with the role's defaults and vars, overridden like inventory vars would."""
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  vars_files: ["{ROLE}/defaults/main.yml", "{ROLE}/vars/main.yml"]
  tasks:
    - ansible.builtin.template:
        src: "{ROLE}/templates/tritonserver.service.j2"
        dest: "{tmp_path}/tritonserver.service"
        mode: "0644"
""",
        encoding="utf-8",
    )
    extra = {"triton_server_docker_binary": DOCKER, **overrides}
    result = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
            "--extra-vars",
            json.dumps(extra),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (tmp_path / "tritonserver.service").read_text(encoding="utf-8")


def systemd_split(line: str) -> list[str]:
    """Split a command line as systemd does for the quoting the template uses: words, '...' or "..." with C escapes."""
    words, word, quote, i, in_word = [], "", None, 0, False
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line):
            word, i, in_word = word + line[i + 1], i + 2, True
            continue
        if quote:
            if char == quote:
                quote = None
            else:
                word += char
        elif char in "'\"":
            quote, in_word = char, True
        elif char.isspace():
            if in_word:
                words.append(word)
            word, in_word = "", False
        else:
            word, in_word = word + char, True
        i += 1
    assert quote is None, f"unterminated quote in {line!r}"
    if in_word:
        words.append(word)
    return words


def exec_start(unit: str) -> list[str]:
    """ExecStart= as an argument list (line continuations joined)."""
    joined = unit.replace("\\\n", " ")
    line = next(line for line in joined.splitlines() if line.startswith("ExecStart="))
    return systemd_split(line[len("ExecStart=") :])


def test_docker_run_command_line_is_exact(tmp_path, clean_ansible_env):
    unit = render_unit(
        tmp_path,
        clean_ansible_env,
        triton_server_runtime="docker",
        triton_server_gpus=[0, 1],
        triton_server_shm_size="2g",
        triton_server_log_verbose=1,
    )
    assert exec_start(unit) == [
        DOCKER,
        "run",
        "--rm",
        "--name",
        "tritonserver",
        "--gpus",
        '"device=0,1"',
        "--shm-size=2g",
        "--ulimit",
        "memlock=-1",
        "--ulimit",
        "stack=67108864",
        "--publish",
        "0.0.0.0:8000:8000",
        "--publish",
        "0.0.0.0:8001:8001",
        "--publish",
        "0.0.0.0:8002:8002",
        "--volume",
        "/opt/triton/models:/models:ro",
        "nvcr.io/nvidia/tritonserver:24.10-py3",
        "tritonserver",
        "--model-repository=/models",
        "--model-control-mode=explicit",
        "--load-model=*",
        "--strict-readiness=true",
        "--exit-on-error=false",
        "--log-verbose=1",
    ]
    assert "Requires=docker.service" in unit
    assert f"ExecStartPre=-{DOCKER} rm --force tritonserver" in unit
    assert f"ExecStop={DOCKER} stop --time 30 tritonserver" in unit
    assert "Restart=always" in unit


def test_docker_poll_mode_all_gpus_and_custom_ports(tmp_path, clean_ansible_env):
    unit = render_unit(
        tmp_path,
        clean_ansible_env,
        triton_server_runtime="docker",
        triton_server_model_control_mode="poll",
        triton_server_load_models=[],
        triton_server_repository_poll_secs=30,
        triton_server_http_port=9000,
        triton_server_bind_address="127.0.0.1",
        triton_server_extra_args=["--backend-config=python,shm-default-byte-size=1048576"],
    )
    argv = exec_start(unit)
    assert argv[argv.index("--gpus") + 1] == "all"
    assert "127.0.0.1:9000:8000" in argv
    assert argv[argv.index("nvcr.io/nvidia/tritonserver:24.10-py3") + 2 :] == [
        "--model-repository=/models",
        "--model-control-mode=poll",
        "--repository-poll-secs=30",
        "--strict-readiness=true",
        "--exit-on-error=false",
        "--log-verbose=0",
        "--backend-config=python,shm-default-byte-size=1048576",
    ]
    assert not any(arg.startswith("--load-model") for arg in argv)


def test_systemd_word_quoting_survives_systemd(tmp_path, clean_ansible_env):
    """Arguments with spaces, quotes, % and $ reach docker unchanged (systemd would expand % and $)."""
    odd = ["--env=GREETING=hello world", "--label=cost=5%", "--env=HOME=$HOME", "--label=it's"]
    unit = render_unit(tmp_path, clean_ansible_env, triton_server_runtime="docker", triton_server_docker_extra_args=odd)
    rendered = exec_start(unit)
    # %% and $$ are systemd's escapes for one % and one $.
    assert [arg.replace("%%", "%").replace("$$", "$") for arg in rendered[rendered.index("--volume") + 2 :][:4]] == odd


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize("gpus", ["all", [0]])
def test_docker_unit_passes_systemd_analyze_verify(tmp_path, clean_ansible_env, gpus):
    unit = render_unit(tmp_path, clean_ansible_env, triton_server_runtime="docker", triton_server_gpus=gpus)
    path = tmp_path / "tritonserver.service"
    assert path.read_text(encoding="utf-8") == unit
    # What the distribution's docker package installs; verify looks for units beside the one it checks.
    (tmp_path / "docker.service").write_text(f"[Service]\nExecStart={DOCKER} version\n", encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
