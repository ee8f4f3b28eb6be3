# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner acceptance run on the lab fleet (issue 17).

`lab up -i inventories/lab`, then `ansible-playbook -i inventories/lab playbooks/site.yml --tags data_miner` twice:
the lab inventory sets render-only mode (k3s cannot run in the lab), so the stack is rendered for the lab's hosts
(tethys = master, calypso = GPU, seaweed1 = storage-only) into the inventory's data_miner_render_dir; the second
run changes nothing. Hosts that were already running (a user's `make site` lab) are left running; only the hosts
this test started are taken down. Needs root (the lab); run it under `flock /tmp/oceanid-lab.lock`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.lab_cli import lab

REPO_ROOT = Path(__file__).resolve().parents[3]
INVENTORY = REPO_ROOT / "inventories" / "lab"
HOSTS = ["tethys", "calypso", "seaweed1"]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


def running() -> set[str]:
    return {host["name"] for host in json.loads(lab("status", "--json").stdout)["hosts"] if host["running"]}


def render_dir() -> Path:
    settings = yaml.safe_load((INVENTORY / "group_vars" / "all" / "data_miner.yml").read_text(encoding="utf-8"))
    assert settings["data_miner_render_only"] is True
    return Path(settings["data_miner_render_dir"])


def site(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            str(INVENTORY),
            str(REPO_ROOT / "playbooks" / "site.yml"),
            "--tags",
            "data_miner",
            *args,
        ],
        cwd=REPO_ROOT,  # the repository's ansible.cfg: this checkout's collection
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.fixture(scope="module")
def lab_fleet():
    before = running()
    started = [name for name in HOSTS if name not in before]
    if started:
        lab("up", "-i", str(INVENTORY), *started)
    try:
        yield started
    finally:
        if started:
            lab("down", *started, check=False)


@pytest.fixture(scope="module")
def runs(lab_fleet):
    first = site()
    second = site()
    return first, second


def test_site_renders_the_stack_and_a_second_run_changes_nothing(runs):
    first, second = runs
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr
    assert "PLAY [Run the data-miner stack on k3s]" in first.stdout
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr
    assert {int(count) for count in re.findall(r"changed=(\d+)", second.stdout)} == {0}, second.stdout[-6000:]


def test_the_lab_hosts_get_their_roles(runs):
    root = render_dir()
    listed = (root / ".oceanid-data-miner-manifests").read_text(encoding="utf-8").splitlines()[1:]
    assert "namespace.yaml" in listed and "config/configmap.yaml" in listed
    placed = {}
    for name in listed:
        manifest = yaml.safe_load((root / name).read_text(encoding="utf-8"))
        if manifest["kind"] not in ("Deployment", "StatefulSet"):
            continue
        terms = manifest["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        placed[name] = {value for term in terms for expr in term["matchExpressions"] for value in expr["values"]}
    assert placed, listed
    assert all("seaweed1" not in nodes for nodes in placed.values()), placed  # storage-only: no worker
    assert placed["workers/download-statefulset.yaml"] == {"tethys", "calypso"}
    assert placed["workers/filter-deployment.yaml"] == {"calypso"}
    assert placed["workers/monitor-deployment.yaml"] == {"tethys"}
    assert placed["infrastructure/postgres-statefulset.yaml"] == {"tethys"}
