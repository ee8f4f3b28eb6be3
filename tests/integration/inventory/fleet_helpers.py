# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Constants and the process runner shared by the fleet inventory and GPU playbook tests (and their conftest)."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def json(self):
        return json.loads(self.stdout)


def run(args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120) -> Run:
    start = time.monotonic()
    process = subprocess.run(
        args, env=env, cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(process.returncode, process.stdout, process.stderr, time.monotonic() - start)
