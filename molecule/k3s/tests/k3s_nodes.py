# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What molecule/k3s's two test modules share: the scenario's paths and a converge.yml run with other inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1]
CONFIG = "/etc/rancher/k3s/config.yaml"
TOKEN = "/etc/rancher/k3s/cluster-token"
SERVERS = ("k3s-s1", "k3s-s2")


def name(host) -> str:
    return host.backend.get_hostname()


def ephemeral() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def converge_with(request, tmp_path: Path, extra: dict, inventories: tuple = (), succeed: bool = True) -> str:
    inventory = request.config.getoption("ansible_inventory")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "--inventory", inventory]
    for extra_inventory in inventories:
        argv += ["--inventory", str(extra_inventory)]
    argv += [str(SCENARIO / "converge.yml"), "--extra-vars", "@" + str(tmp_path / "extra.json")]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900, env=os.environ.copy())
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == succeed, output[-4000:]
    return " ".join(output.split())


def file_state(host, path: str) -> tuple:
    return host.file(path).sha256sum, host.run("stat -c %%.9Y %s", path).stdout.strip()
