# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`--tags <role>` and `--limit <host>` on the converged demo fleet run exactly what they name (issue 18).

site.yml runs for real on the lab fleet (the session's `demo_fleet`) with the ansible.posix.json callback; the tasks
that ran are counted and compared with what `--list-tasks` announces for the same selection. Role argument
validation and the layer switches are tagged `always` by design (ansible-core validates a role's arguments on
every run) and are left out of the count. Every run here changes nothing: the fleet is converged.
"""

from __future__ import annotations

import json
import re

import pytest

VALIDATION = "Validating arguments against arg spec"
ROLE_OF_TASK = re.compile(r"^oceanid\.fleet\.(\w+) : ")

pytestmark = pytest.mark.usefixtures("demo_fleet")


def run_json(fleet, *args: str) -> dict:
    result = fleet.playbook("playbooks/site.yml", *args, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("{") :])


def ran(report: dict) -> list[dict]:
    """One record per task that reached a host (run or skipped by its condition), validation left out."""
    records = []
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            if VALIDATION in name:
                continue
            for host, result in task["hosts"].items():
                records.append(
                    {"play": play["play"]["name"], "task": name, "host": host, "skipped": result.get("skipped", False)}
                )
    return records


def listed(fleet, *args: str) -> dict[str, list[str]]:
    """--list-tasks for the same selection: play name -> tasks that are not tagged always."""
    result = fleet.playbook("playbooks/site.yml", "--list-tasks", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    plays: dict[str, list[str]] = {}
    current = None
    for line in result.stdout.splitlines():
        play = re.match(r"^  play #\d+ \(.*\): (.*)\tTAGS: ", line)
        if play:
            current = play.group(1)
            plays[current] = []
        elif current and line.startswith("      ") and "\tTAGS: [" in line:
            name, tags = line.strip().rsplit("\tTAGS: [", 1)
            if "always" not in tags.rstrip("]").split(", "):
                plays[current].append(name)
    return {play: tasks for play, tasks in plays.items() if tasks}


def changed(report: dict) -> dict[str, int]:
    return {host: stats["changed"] for host, stats in report["stats"].items()}


def test_a_role_tag_runs_only_that_roles_tasks_on_its_hosts(demo_fleet):
    report = run_json(demo_fleet, "--tags", "model_puller")
    records = [record for record in ran(report) if not record["task"].startswith("End ")]
    announced = listed(demo_fleet, "--tags", "model_puller")
    assert list(announced) == ["Pull new model versions into Triton on the GPU hosts"], announced
    assert {record["play"] for record in records} == set(announced)
    assert {record["host"] for record in records} == {"calypso"}
    # Every announced task reached calypso once, and nothing else ran: the counts match.
    assert sorted(record["task"] for record in records) == sorted(announced[next(iter(announced))])
    roles = {ROLE_OF_TASK.match(r["task"]).group(1) for r in records if ROLE_OF_TASK.match(r["task"])}
    assert roles == {"model_puller"}
    assert set(changed(report).values()) == {0}, changed(report)


def test_a_limit_runs_every_layer_on_that_host_only(demo_fleet):
    report = run_json(demo_fleet, "--limit", "seaweed1")
    records = ran(report)
    assert records and {record["host"] for record in records} == {"seaweed1"}
    played = {record["play"] for record in records if not record["skipped"]}
    assert played == {
        "Prepare every fleet host",
        "Run SeaweedFS (master, volume servers, filer, S3, FUSE mount) across the fleet",
    }
    work = [record for record in records if not record["task"].startswith("End ")]
    announced = listed(demo_fleet, "--limit", "seaweed1")
    # --list-tasks does not apply --limit to plays (it lists every play); the plays with seaweed1 in them ran all
    # their static tasks; include_tasks adds the included ones at run time, so announced <= ran for those plays.
    for play in played:
        assert set(announced[play]) <= {record["task"] for record in work if record["play"] == play} | {
            task for task in announced[play] if "include" in task.lower()
        }
    assert changed(report) == {"seaweed1": 0}


def test_a_layer_tag_and_a_limit_together(demo_fleet):
    report = run_json(demo_fleet, "--tags", "serving", "--limit", "calypso")
    records = [record for record in ran(report) if not record["task"].startswith("End ")]
    assert {record["host"] for record in records} == {"calypso"}
    assert {record["play"] for record in records} == {
        "Serve models with Triton on the GPU hosts",
        "Pull new model versions into Triton on the GPU hosts",
    }
    roles = {ROLE_OF_TASK.match(r["task"]).group(1) for r in records if ROLE_OF_TASK.match(r["task"])}
    assert roles == {"triton_server", "model_puller"}
    assert changed(report) == {"calypso": 0}
