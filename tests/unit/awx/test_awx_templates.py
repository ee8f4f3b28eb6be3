# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""awx/fleet.yml and playbooks/awx_configure.yml, offline (no AWX server runs here).

Every job template's playbook exists, its tags are tags of that playbook, its survey variables are variables the
playbook reads, its credentials exist and their types' injectors refer to defined fields and set what the
collection reads; the workflow's nodes are job templates; the push playbook passes only options the awx.awx modules
document. tests/integration/awx runs every template through ansible-runner against the lab.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env
from tests.unit.awx import awx_data

ROOT = awx_data.REPO_ROOT
BIN = Path(sys.executable).parent
DATA = awx_data.load()
TEMPLATES = awx_data.job_templates(DATA)
LAYERS = ["hosts", "storage", "gpu", "cluster", "serving", "edge", "labelling", "workloads"]
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def ids(items):
    return [item.name for item in items]


@functools.cache
def _env(tmp: str) -> dict[str, str]:
    return isolated_ansible_env(Path(tmp))


@functools.cache
def playbook_tags(playbook: str, env_dir: str) -> set[str]:
    """Every play and task tag of a playbook, imports included (ansible-playbook --list-tags)."""
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "--list-tags", "-i", "localhost,", str(ROOT / playbook)],
        env=_env(env_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tags = set()
    for listed in re.findall(r"TAGS: \[([^\]]*)\]", result.stdout):
        tags.update(t.strip() for t in listed.split(",") if t.strip())
    return tags


def playbook_text(playbook: Path, seen: set[Path] | None = None) -> str:
    """The playbook's text and that of the playbooks it imports and the vars files it reads."""
    seen = seen if seen is not None else set()
    if playbook in seen:
        return ""
    seen.add(playbook)
    text = playbook.read_text(encoding="utf-8")
    for play in yaml.safe_load(text) or []:
        imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if imported:
            name = imported.removeprefix("oceanid.fleet.")
            path = playbook.parent / (name if name.endswith(".yml") else f"{name}.yml")
            text += playbook_text(path, seen)
        for vars_file in play.get("vars_files", []):
            path = playbook.parent / vars_file
            if path.exists():
                text += path.read_text(encoding="utf-8")
    return text


@pytest.mark.parametrize("jt", TEMPLATES, ids=ids(TEMPLATES))
def test_every_template_names_a_playbook_of_this_repository(jt):
    assert jt.playbook.startswith("playbooks/"), jt.playbook
    assert (ROOT / jt.playbook).is_file(), f"{jt.name}: {jt.playbook} does not exist"


@pytest.mark.parametrize("jt", TEMPLATES, ids=ids(TEMPLATES))
def test_every_template_tag_is_a_tag_of_its_playbook(jt, tmp_path_factory):
    if not (jt.tags or jt.skip):
        return
    tags = playbook_tags(jt.playbook, str(tmp_path_factory.getbasetemp() / "tags"))
    assert set(jt.tags + jt.skip) <= tags, f"{jt.name}: {set(jt.tags + jt.skip) - tags} not in {jt.playbook}"


@pytest.mark.parametrize("jt", TEMPLATES, ids=ids(TEMPLATES))
def test_every_survey_variable_is_read_by_the_playbook(jt):
    text = playbook_text(ROOT / jt.playbook)
    for question in jt.survey:
        assert re.search(rf"\b{question['variable']}\b", text), f"{jt.name}: {jt.playbook} never reads {question}"


@pytest.mark.parametrize("jt", TEMPLATES, ids=ids(TEMPLATES))
def test_every_survey_is_one_awx_accepts(jt):
    assert jt.raw.get("survey_spec", {}).get("name"), jt.name
    variables = [q["variable"] for q in jt.survey]
    assert len(variables) == len(set(variables)), jt.name
    for question in jt.survey:
        assert {"question_name", "variable", "type", "required"} <= set(question), question
        assert question["type"] in SURVEY_TYPES, question
        if question["type"] in ("multiplechoice", "multiselect"):
            assert all(isinstance(c, str) for c in question["choices"]), question
            assert question.get("default") in question["choices"], question
        if question["type"] == "text" and question.get("default"):
            assert question["min"] <= len(question["default"]) <= question["max"], question


def test_there_is_a_template_for_every_layer_and_every_way_the_users_run_the_fleet():
    layer_tags = {t for jt in TEMPLATES if jt.playbook == "playbooks/site.yml" for t in jt.tags}
    assert set(LAYERS) <= layer_tags
    playbooks = {jt.playbook for jt in TEMPLATES}
    assert {
        "playbooks/site.yml",
        "playbooks/smoke.yml",
        "playbooks/gpu_launch.yml",
        "playbooks/gpu_terminate.yml",
        "playbooks/gpu_report.yml",
    } <= playbooks
    site = [jt for jt in TEMPLATES if jt.playbook == "playbooks/site.yml" and not jt.tags]
    assert {jt.job_type for jt in site} == {"run", "check"}
    check = next(jt for jt in site if jt.job_type == "check")
    assert "oceanid drift guard" in check.credentials
    assert all("oceanid drift guard" not in jt.credentials for jt in TEMPLATES if jt.job_type != "check")
    assert any(jt.job_slice_count > 1 for jt in TEMPLATES)
    assert next(jt for jt in site if jt.job_type == "run").raw["ask_job_slice_count_on_launch"] is True


def test_the_gpu_profile_choices_are_the_curated_profiles():
    profiles = yaml.safe_load((ROOT / "playbooks" / "vars" / "gpu_profiles.yml").read_text())["gpu_profiles"]
    questions = [
        q
        for spec in [jt.survey for jt in TEMPLATES]
        + [w["survey_spec"]["spec"] for w in DATA["awx_workflow_job_templates"]]
        for q in spec
        if q["variable"] == "gpu_profile"
    ]
    assert len(questions) >= 2
    for question in questions:
        assert question["choices"] == list(profiles), question


def test_every_credential_of_a_template_exists_and_has_a_known_type():
    credentials = {c["name"]: c for c in DATA["awx_credentials"]}
    fields = awx_data.credential_type_fields(DATA)
    for jt in TEMPLATES:
        for name in jt.credentials:
            assert name in credentials, f"{jt.name}: no credential {name}"
    for credential in credentials.values():
        assert credential["credential_type"] in fields, credential
        given = set(credential.get("inputs_from_env", {})) | set(credential.get("inputs", {}))
        assert given <= fields[credential["credential_type"]], credential
    inventory_credential = DATA["awx_inventory"]["source"]["credential"]
    assert credentials[inventory_credential]["credential_type"] == "Amazon Web Services"


@pytest.mark.parametrize("ct", DATA["awx_credential_types"], ids=[ct["name"] for ct in DATA["awx_credential_types"]])
def test_every_injector_refers_to_fields_of_its_type_and_sets_what_the_collection_reads(ct):
    field_ids = {f["id"] for f in ct["inputs"]["fields"]}
    assert set(ct["inputs"].get("required", [])) <= field_ids
    secrets = {f["id"] for f in ct["inputs"]["fields"] if f.get("secret")}
    injected = ct["injectors"]
    assert injected.get("env") or injected.get("extra_vars"), ct["name"]
    for section in ("env", "extra_vars"):
        for name, template in (injected.get(section) or {}).items():
            assert awx_data.template_variables(template) <= field_ids, f"{ct['name']}: {name}: {template}"
            assert not name.startswith("ANSIBLE_"), f"AWX refuses ANSIBLE_* in injectors: {name}"
    plugins = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "plugins").rglob("*.py"))
    for name in injected.get("env") or {}:
        assert name in plugins, f"{ct['name']}: nothing in plugins/ reads {name}"
    readers = "".join(
        p.read_text(encoding="utf-8")
        for pattern in ("roles/*/defaults/main.yml", "playbooks/*.yml")
        for p in ROOT.glob(pattern)
    )
    for name in injected.get("extra_vars") or {}:
        assert re.search(rf"\b{name}\b", readers), f"{ct['name']}: no role default or playbook reads {name}"
    # secrets only through fields marked secret (AWX hides those)
    for field in ct["inputs"]["fields"]:
        if re.search("key|token|password", field["id"]) and field["id"] != "access_key":
            assert field["id"] in secrets, field


def test_the_workflow_launches_a_gpu_then_converges_it_then_runs_the_smoke_report():
    names = {jt.name: jt for jt in TEMPLATES}
    (workflow,) = DATA["awx_workflow_job_templates"]
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    order = []
    node = workflow["workflow_nodes"][0]
    while node:
        order.append(names[node["unified_job_template"]["name"]].playbook)
        assert node["unified_job_template"]["type"] == "job_template"
        following = node.get("related", {}).get("success_nodes", [])
        node = nodes[following[0]["identifier"]] if following else None
    assert order == ["playbooks/gpu_launch.yml", "playbooks/site.yml", "playbooks/smoke.yml"]
    survey = {q["variable"] for q in workflow["survey_spec"]["spec"]}
    site = nodes["site"]
    assert awx_data.template_variables(site["extra_data"]["fleet_hosts"]) <= survey
    assert "gpu_name" in survey and "gpu_profile" in survey
    # every node's template accepts extra data (a survey or ask_variables_on_launch)
    for node in nodes.values():
        jt = names[node["unified_job_template"]["name"]]
        if node.get("extra_data"):
            assert jt.survey or jt.raw.get("ask_variables_on_launch"), jt.name


# --- the push playbook ------------------------------------------------------------------------------------------------


def _module_options(module: str) -> set[str]:
    result = subprocess.run(
        [str(BIN / "ansible-doc"), "-j", module], capture_output=True, text=True, timeout=120, check=True
    )
    doc = json.loads(result.stdout)[module]["doc"]
    options = set()
    for name, spec in doc["options"].items():
        options.add(name)
        options.update(spec.get("aliases", []))
    return options


def test_the_push_playbook_passes_only_options_the_awx_modules_document():
    plays = yaml.safe_load((ROOT / "playbooks" / "awx_configure.yml").read_text(encoding="utf-8"))
    tasks = [t for play in plays for t in play.get("pre_tasks", []) + play.get("tasks", [])]
    modules = {}
    for task in tasks:
        for key, args in task.items():
            if key.startswith("awx.awx."):
                modules.setdefault(key, set()).update(args)
    assert set(modules) == {
        "awx.awx.organization",
        "awx.awx.execution_environment",
        "awx.awx.project",
        "awx.awx.credential_type",
        "awx.awx.credential",
        "awx.awx.inventory",
        "awx.awx.inventory_source",
        "awx.awx.job_template",
        "awx.awx.workflow_job_template",
    }
    for module, used in modules.items():
        assert used <= _module_options(module), f"{module}: {used - _module_options(module)}"


def test_the_push_playbook_passes_every_job_template_field_of_the_data_file():
    text = (ROOT / "playbooks" / "awx_configure.yml").read_text(encoding="utf-8")
    for jt in TEMPLATES:
        for key in jt.raw:
            assert re.search(rf"^\s+{key}:", text, re.MULTILINE), f"{jt.name}: {key} is never pushed"


def test_the_push_playbook_and_the_data_file_pass_a_syntax_check(tmp_path):
    result = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "--syntax-check",
            str(ROOT / "playbooks" / "awx_configure.yml"),
            "-e",
            f"@{awx_data.DATA_FILE}",
        ],
        env=isolated_ansible_env(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
