# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo fleet, shared by the integration tests that need the whole converged fleet (issue 18).

`demo_fleet` boots the hosts of inventories/lab that are not running (a user's `make site` fleet is reused as is),
converges playbooks/site.yml on them once per pytest session, and yields a `DemoFleet`. At the end of the session
only the hosts it started are taken down. Tests that use it must not stop shared services: they may converge again
(site.yml is idempotent) but leave the fleet serving. OCEANID_TEST_FLEET_INVENTORY names another inventory of the
same hosts (a fleet another checkout of this repository booted: the lab lists a host only under the inventory path
that started it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.lab_cli import lab as _lab

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_INVENTORY = Path(os.environ.get("OCEANID_TEST_FLEET_INVENTORY") or REPO_ROOT / "inventories" / "lab")
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


@dataclass
class DemoFleet:
    inventory: Path
    hosts: list[str]
    started: list[str]
    site_run: subprocess.CompletedProcess

    def playbook(self, playbook: str, *args: str, env: dict | None = None, timeout: int = 1800):
        """ansible-playbook with this checkout's ansible.cfg on the demo fleet; the result, never raising."""
        return subprocess.run(
            [ANSIBLE_PLAYBOOK, "-i", str(self.inventory), playbook, *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )


def lab_inventory_hosts() -> list[str]:
    """The host names of inventories/lab, as Ansible reads them."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(LAB_INVENTORY), "--list"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return sorted(json.loads(proc.stdout)["_meta"]["hostvars"])


@pytest.fixture(scope="session")
def demo_fleet():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    hosts = lab_inventory_hosts()
    running = {host["name"]: host for host in json.loads(_lab("status", "--json").stdout)["hosts"] if host["running"]}
    foreign = {
        name: running[name]["origin"]
        for name in hosts
        if name in running and running[name].get("origin") != str(LAB_INVENTORY.resolve())
    }
    if foreign and not os.environ.get("OCEANID_TEST_FLEET_INVENTORY"):
        # The lab gives a host an address only under the inventory that started it (lab-connection --origin).
        pytest.fail(
            f"lab hosts {sorted(foreign)} are running but were started from another inventory "
            f"({sorted(set(map(str, foreign.values())))}), so {LAB_INVENTORY} cannot reach them: take them down "
            f"(python3 -m lab down {' '.join(sorted(foreign))}) or set OCEANID_TEST_FLEET_INVENTORY to that inventory"
        )
    started = [name for name in hosts if name not in running]
    if started:
        _lab("up", "-i", str(LAB_INVENTORY), *started)
    fleet = DemoFleet(LAB_INVENTORY, hosts, started, site_run=subprocess.CompletedProcess([], 0))
    try:
        fleet.site_run = fleet.playbook(str(REPO_ROOT / "playbooks" / "site.yml"))
        assert fleet.site_run.returncode == 0, fleet.site_run.stdout[-8000:] + fleet.site_run.stderr[-4000:]
        yield fleet
    finally:
        if started:
            _lab("down", *started, check=False)
