# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""site.yml is its layers, in order; each layer runs alone by FQCN; --tags and --limit select what they name.

What ansible-playbook itself says it would run (`--list-tasks`, `--list-hosts`) on an inventory of the demo fleet's
shape. tests/integration/site/test_site_selection.py runs the same selections for real on the lab fleet and counts
the tasks that ran.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
LAYERS = ["hosts", "storage", "gpu", "cluster", "serving", "edge", "labelling", "workloads"]
# The roles each layer runs, by the plays' tags (a layer's tag selects all of them, a role's tag only its play).
LAYER_ROLES = {
    "hosts": ["host_base"],
    "storage": ["seaweedfs"],
    "gpu": ["nvidia_runtime"],
    "cluster": ["k3s"],
    "serving": ["triton_server", "model_puller"],
    "edge": ["cloudflared_node"],
    "labelling": ["labelfish_db", "ls_triton_adapter", "label_studio"],
    "workloads": ["data_miner"],
}
ROLE_OF_TASK = re.compile(r"^oceanid\.fleet\.(\w+) : ")
VALIDATION = "Validating arguments against arg spec"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    """The demo fleet's groups with every layer on: a cluster, a Cloudflare token (nothing connects: list only)."""
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": {"fleet_cloudflare_api_token": "listing-only", "model_puller_s3_bucket": "models"},
                    "children": {
                        "k3s_servers": {"hosts": {"tethys": None}},
                        "k3s_agents": {"hosts": {"calypso": None}},
                        "label_studio_hosts": {"hosts": {"tethys": None}},
                        "gpu_hosts": {"hosts": {"calypso": None}},
                        "storage_nodes": {"hosts": {"seaweed1": None}},
                    },
                }
            }
        ),
        encoding="utf-8",
    )
    return path


def ansible_playbook(inventory: Path, playbook: str, *args: str, tmp_path: Path) -> str:
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), playbook, *args],
        env=isolated_ansible_env(tmp_path / "ansible"),
        cwd=ROOT,  # the repository's ansible.cfg: oceanid.fleet.* is this checkout
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def listed_plays(output: str) -> list[dict]:
    """--list-tasks / --list-hosts output as [{name, tags, tasks: [(name, tags)], hosts: [...]}]."""
    plays: list[dict] = []
    section = None
    for line in output.splitlines():
        play = re.match(r"^  play #\d+ \((.*)\): (.*)\tTAGS: \[(.*)\]$", line)
        if play:
            plays.append({"pattern": play.group(1), "name": play.group(2), "tags": play.group(3).split(","),
                          "tasks": [], "hosts": []})  # fmt: skip
            continue
        if not plays:
            continue
        stripped = line.strip()
        if stripped in ("tasks:",) or stripped.startswith("pattern:"):
            section = "tasks" if stripped == "tasks:" else None
            continue
        hosts = re.match(r"^    hosts \(\d+\):$", line)
        if hosts:
            section = "hosts"
            continue
        if section == "tasks" and line.startswith("      ") and "\tTAGS: [" in line:
            name, tags = line.strip().rsplit("\tTAGS: [", 1)
            plays[-1]["tasks"].append((name, tags.rstrip("]").split(", ")))
        elif section == "hosts" and line.startswith("      ") and stripped:
            plays[-1]["hosts"].append(stripped)
    return plays


def work_tasks(play: dict) -> list[str]:
    """The tasks that do something: not the role argument validation or the layer switches (tagged always)."""
    return [name for name, tags in play["tasks"] if "always" not in tags]


def test_site_is_the_layers_in_order():
    site = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text(encoding="utf-8"))
    assert [entry["ansible.builtin.import_playbook"] for entry in site] == [f"{layer}.yml" for layer in LAYERS]


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_runs_alone_by_its_fqcn(layer, inventory, tmp_path):
    output = ansible_playbook(inventory, f"oceanid.fleet.{layer}", "--list-tasks", tmp_path=tmp_path)
    plays = listed_plays(output)
    assert plays and all(layer in play["tags"] for play in plays), output
    roles = {
        ROLE_OF_TASK.match(task).group(1) for play in plays for task in work_tasks(play) if ROLE_OF_TASK.match(task)
    }
    assert roles == set(LAYER_ROLES[layer]), roles


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_tag_selects_only_that_layers_tasks(layer, inventory, tmp_path):
    plays = listed_plays(
        ansible_playbook(
            inventory, str(ROOT / "playbooks" / "site.yml"), "--list-tasks", "--tags", layer, tmp_path=tmp_path
        )  # fmt: skip
    )
    selected = [play for play in plays if work_tasks(play)]
    assert selected, plays
    assert all(layer in play["tags"] for play in selected), [play["name"] for play in selected]
    for play in plays:
        if layer not in play["tags"]:
            assert [name for name, _tags in play["tasks"] if VALIDATION not in name and "End " not in name] == []


@pytest.mark.parametrize("role", sorted({role for roles in LAYER_ROLES.values() for role in roles}))
def test_a_role_tag_selects_only_that_roles_play(role, inventory, tmp_path):
    plays = listed_plays(
        ansible_playbook(
            inventory, str(ROOT / "playbooks" / "site.yml"), "--list-tasks", "--tags", role, tmp_path=tmp_path
        )  # fmt: skip
    )
    selected = [play for play in plays if work_tasks(play)]
    assert len(selected) == 1 and role in selected[0]["tags"], [play["name"] for play in selected]
    roles = {ROLE_OF_TASK.match(task).group(1) for task in work_tasks(selected[0]) if ROLE_OF_TASK.match(task)}
    assert roles == {role}, roles


def test_a_limit_selects_only_that_hosts_part_of_every_layer(inventory, tmp_path):
    plays = listed_plays(
        ansible_playbook(
            inventory, str(ROOT / "playbooks" / "site.yml"), "--list-hosts", "--limit", "seaweed1", tmp_path=tmp_path
        )  # fmt: skip
    )
    with_hosts = {play["name"]: play["hosts"] for play in plays if play["hosts"]}
    assert with_hosts == {
        "Prepare every fleet host": ["seaweed1"],
        "Run SeaweedFS (master, volume servers, filer, S3, FUSE mount) across the fleet": ["seaweed1"],
    }


def role_part_tags(role: str) -> set[str]:
    """Every tag a role's task files carry besides the role's own name: what `--tags <role>_<part>` can select."""
    tags: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            value = node.get("tags")
            if isinstance(value, str):
                tags.add(value)
            elif isinstance(value, list):
                tags.update(str(tag) for tag in value)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for path in (ROOT / "roles" / role / "tasks").glob("*.yml"):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return {tag for tag in tags if tag.startswith(f"{role}_")}


# Roles that read no facts and whose plays gather none (the data-miner stack renders on the controller).
FACTLESS_ROLES = {"data_miner"}


@pytest.mark.parametrize(
    "role", sorted({role for roles in LAYER_ROLES.values() for role in roles} - FACTLESS_ROLES)
)  # fmt: skip
def test_every_part_tag_of_a_role_brings_the_facts_its_play_would_gather(role):
    """`--tags <role>_<part>` skips the play's own gathering (tagged with the play's tags only); the play's import of
    playbooks/tasks/facts.yml must carry every part tag of its role, or that part runs with no facts."""
    layer = next(layer for layer, roles in LAYER_ROLES.items() if role in roles)
    plays = yaml.safe_load((ROOT / "playbooks" / f"{layer}.yml").read_text(encoding="utf-8"))
    (play,) = [
        play for play in plays if any(entry.get("role") == f"oceanid.fleet.{role}" for entry in play.get("roles", []))
    ]
    imports = [
        task for task in play.get("pre_tasks", []) if task.get("ansible.builtin.import_tasks") == "tasks/facts.yml"
    ]
    assert len(imports) == 1, f"{play['name']}: no pre_task imports tasks/facts.yml"
    missing = role_part_tags(role) - set(imports[0].get("tags", []))
    assert missing == set(), f"{play['name']}: tags that would run {role} without facts: {sorted(missing)}"


def test_a_role_part_tag_lists_the_fact_gathering_of_its_play_only(inventory, tmp_path):
    plays = listed_plays(
        ansible_playbook(
            inventory,
            str(ROOT / "playbooks" / "site.yml"),
            "--list-tasks",
            "--tags",
            "host_base_preflight,triton_server_models",
            tmp_path=tmp_path,
        )  # fmt: skip
    )
    gathering = "Gather the facts the roles read (a run narrowed to part of a role skips the play's gathering)"
    with_facts = {play["name"] for play in plays if any(name == gathering for name, _tags in play["tasks"])}
    assert with_facts == {"Prepare every fleet host", "Serve models with Triton on the GPU hosts"}, with_facts


@pytest.mark.parametrize("role", sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "tasks").is_dir()))
def test_every_part_of_a_role_runs_its_preflight(role):
    """`--tags <role>_<part>` alone runs the role's preflight too: it checks the inputs and works out what the parts
    read (a part narrowed to itself failed on "'__label_studio_labels_files' is undefined" and the like)."""
    main = yaml.safe_load((ROOT / "roles" / role / "tasks" / "main.yml").read_text(encoding="utf-8"))
    tags = {tag for task in main for tag in task.get("tags", [])}
    (preflight,) = [task for task in main if task.get("ansible.builtin.import_tasks") == "preflight.yml"]
    assert tags - set(preflight["tags"]) == set(), f"{role}: parts that would run without its preflight"
