# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/site.yml limited by --tags, on an inventory of the demo fleet's shape whose hosts are this machine.

ansible-core validates a role's arguments on every run, whatever the tags (that task is tagged `always`), so a play
whose role arguments refer to a variable set by one of its own tagged tasks fails a run limited to other tags
(`--tags data_miner` failed in the edge layer with "'__fleet_edge_tunnel' is undefined"). A tag that names nothing
must run nothing and succeed; layers that are off (no Cloudflare token, fleet_k3s_enabled false) must end before
their roles' validation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.ansible_env import isolated_ansible_env

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def test_a_run_limited_to_a_tag_that_names_nothing_changes_nothing_and_succeeds(tmp_path):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "vars": {**local, "fleet_k3s_enabled": False},
            "children": {
                "k3s_servers": {"hosts": {"tethys": None}},
                "label_studio_hosts": {"hosts": {"tethys": None}},
                "gpu_hosts": {"hosts": {"calypso": None}},
                "storage_nodes": {"hosts": {"seaweed1": None}},
            },
        }
    }
    path = tmp_path / "inventory" / "hosts.yml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(path), str(ROOT / "playbooks" / "site.yml"), "--tags", "no_such_tag"],
        env=isolated_ansible_env(tmp_path / "ansible"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "is undefined" not in output
    recap = output[output.index("PLAY RECAP") :]
    for host in ("tethys", "calypso", "seaweed1"):
        assert " changed=0 " in recap.split(host)[1].split("\n")[0], recap
