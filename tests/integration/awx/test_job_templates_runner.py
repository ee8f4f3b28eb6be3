# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every job template of awx/fleet.yml, and the workflow, through ansible-runner against the lab (issue 18).

No AWX server runs here. AWX launches a job template by running ansible-runner inside the execution environment, in
the project's checkout, with the template's playbook, inventory, limit, job tags and skip tags, extra vars, the
survey's answers (its defaults when nobody answers), check mode for job_type check and the verbosity; each attached
credential injects its environment variables and extra vars. This test does exactly that with ansible-runner
(the pinned 2.4.3) in this checkout, and asserts that every run is `successful` with rc 0:

* the inventory is inventories/lab (it stands in for the template's inventory, the project's inventories/example);
* the environment is the execution environment's (the ENV lines of execution-environment.yml; the collection comes
  from this checkout's .cache/collections, which stands in for the EE's installed copy);
* credentials get the lab's demo values (read from the lab inventory); the lab has no Cloudflare token, so the
  Cloudflare credential is not attached (the edge layer says it is skipped), and the lab inventory's own connection
  settings stand in for the machine credential;
* a sliced template runs once per slice, with its share of the hosts as limit, as AWX's slices do;
* the GPU templates talk to moto's EC2 (tests/support/moto_ec2.py), with the site settings (gpu_launch_site) that
  the fleet inventory gives in AWX passed as extra vars; moto's instances have no network, so the launch answers
  gpu_wait_for_ssh=false;
* the workflow's nodes run in order with the workflow's survey answers and each node's extra data; the box it
  launches in moto is named calypso, so that the site node converges the lab's GPU host in its place.

The fleet is converged once per session by the `demo_fleet` fixture (it boots the lab hosts that are not running);
the templates then run against it, the site template first. Needs root (the lab); run it under
`flock /tmp/oceanid-lab.lock` when other sessions share the lab.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml

from tests.support.ansible_env import link_collection
from tests.support.moto_ec2 import IMAGE_ID, MotoEC2, aws_environment
from tests.unit.awx import awx_data

ansible_runner = pytest.importorskip("ansible_runner", reason="ansible-runner is in requirements-dev.txt")

ROOT = awx_data.REPO_ROOT
LAB = ROOT / "inventories" / "lab"
DATA = awx_data.load()
TEMPLATES = awx_data.job_templates(DATA)
TIMES: list[tuple[str, float]] = []


def lab_credentials(moto_url: str) -> dict[str, dict | None]:
    """The credentials' inputs in the lab (None: not attached here, and why in the module docstring)."""
    seaweedfs = yaml.safe_load((LAB / "group_vars/all/seaweedfs.yml").read_text(encoding="utf-8"))
    labelling = yaml.safe_load((LAB / "group_vars/label_studio_hosts/labelling.yml").read_text(encoding="utf-8"))
    identity = seaweedfs["seaweedfs_s3_identities"][0]
    aws = aws_environment()
    return {
        "oceanid fleet SSH": None,
        "oceanid AWS": {"username": aws["AWS_ACCESS_KEY_ID"], "password": aws["AWS_SECRET_ACCESS_KEY"]},
        "oceanid SeaweedFS S3": {"access_key": identity["access_key"], "secret_key": identity["secret_key"]},
        "oceanid Cloudflare": None,
        "oceanid Label Studio": {"api_token": labelling["label_studio_admin_token"]},
        "oceanid drift guard": awx_data.credential("oceanid drift guard", DATA)["inputs"],
    }


def ee_environment() -> dict[str, str]:
    """The ENV lines of execution-environment.yml's final stage; the collections path is this checkout's."""
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text(encoding="utf-8"))
    env = {}
    for step in ee["additional_build_steps"]["append_final"]:
        match = re.match(r"^ENV (\w+)=(.*)$", step)
        if match:
            env[match.group(1)] = match.group(2)
    assert env.pop("ANSIBLE_COLLECTIONS_PATH") == "/usr/share/ansible/collections"
    env["ANSIBLE_COLLECTIONS_PATH"] = str(link_collection())
    return env


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    fleet = MotoEC2(["us-east-1"], log_dir=tmp_path_factory.mktemp("moto")).start()
    yield fleet
    fleet.stop()


@pytest.fixture(scope="module")
def gpu_site(moto):
    """gpu_launch_site in moto's us-east-1, as a fleet inventory's group_vars/all/gpu_launch.yml gives it."""
    ec2 = moto.client("ec2", "us-east-1")
    subnets = sorted(
        ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"],
        key=lambda s: s["AvailabilityZone"],
    )[:2]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    return {
        "gpu_launch_site": {
            "region": "us-east-1",
            "image_id": IMAGE_ID,
            "subnets": [s["SubnetId"] for s in subnets],
            "security_groups": [group],
        },
        "fleet_aws_endpoint_url": moto.url,
    }


@pytest.fixture(scope="module")
def launch(demo_fleet, moto, gpu_site, tmp_path_factory):
    """Launch one template as AWX would: returns a function (template, answers, extra) -> list of runner results."""
    credentials = lab_credentials(moto.url)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OCEANID_", "AWS_"))}
    base_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base_env.get('PATH', '')}"
    base_env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="1")
    work = tmp_path_factory.mktemp("runner")

    def _launch(jt: awx_data.JobTemplate, answers: dict | None = None, node_data: dict | None = None):
        envvars = ee_environment()
        extravars = {**jt.extra_vars, **jt.survey_defaults(), **(answers or {}), **(node_data or {})}
        for name in jt.credentials:
            inputs = credentials[name]
            if inputs is None:
                continue
            env, extra = awx_data.inject(awx_data.credential(name, DATA)["credential_type"], inputs, DATA)
            envvars.update(env)
            extravars.update(extra)
        if jt.playbook.startswith("playbooks/gpu_"):
            extravars = {**gpu_site, **extravars}
        cmdline = []
        if jt.job_type == "check":
            cmdline.append("--check")
        if jt.raw.get("diff_mode"):
            cmdline.append("--diff")
        limits = [jt.limit or None]
        if jt.job_slice_count > 1:
            limits = [",".join(share) for share in awx_data.slices(demo_fleet.hosts, jt.job_slice_count)]
        results = []
        for index, limit in enumerate(limits):
            ident = f"{re.sub(r'[^a-z0-9]+', '-', jt.name.lower())}-{index}-{time.monotonic_ns()}"
            (work / ident).mkdir()
            start = time.monotonic()
            with mock.patch.dict(os.environ, base_env, clear=True):
                # A private data dir per job, as AWX has: ansible-runner keeps the arguments it was given there
                # (env/cmdline, env/extravars) and a later run without them would read them back.
                run = ansible_runner.run(
                    private_data_dir=str(work / ident),
                    project_dir=str(ROOT),
                    ident=ident,
                    playbook=jt.playbook,
                    inventory=str(LAB),
                    limit=limit,
                    tags=",".join(jt.tags) or None,
                    skip_tags=",".join(jt.skip) or None,
                    extravars=extravars,
                    envvars=envvars,
                    cmdline=" ".join(cmdline) or None,
                    verbosity=jt.verbosity or None,
                    quiet=True,
                    timeout=1800,
                )
            TIMES.append((f"{jt.name}{f' (slice {index + 1})' if len(limits) > 1 else ''}", time.monotonic() - start))
            stdout = Path(run.config.artifact_dir, "stdout").read_text(encoding="utf-8", errors="replace")
            results.append((run, stdout))
        return results

    yield _launch
    print("\nansible-runner job times (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in TIMES))


def assert_successful(jt, results):
    for run, stdout in results:
        assert run.status == "successful" and run.rc == 0, f"{jt.name}: {run.status} rc={run.rc}\n{stdout[-8000:]}"
        assert not any(run.stats.get("failures", {}).values()), run.stats
        assert not any(run.stats.get("dark", {}).values()), run.stats


# What the lab answers where AWX's defaults cannot apply here (the module docstring says why).
ANSWERS = {
    "oceanid GPU launch": {"gpu_wait_for_ssh": "false"},
    "oceanid GPU terminate": {"gpu_terminate_names": "gpu-g6-xlarge"},
}


@pytest.mark.parametrize("name", [jt.name for jt in TEMPLATES])
def test_every_job_template_runs_successfully_as_awx_would_run_it(name, launch, tmp_path):
    jt = awx_data.job_template(name, DATA)
    answers = dict(ANSWERS.get(name, {}))
    if name == "oceanid GPU report":
        answers["gpu_report_dest"] = str(tmp_path / "gpu_sessions_latest.csv")
    results = launch(jt, answers)
    assert_successful(jt, results)
    if jt.job_type == "check":
        # a converged fleet: nothing would change, and the drift guard (active in check mode) is quiet
        for run, stdout in results:
            assert not any(run.stats.get("changed", {}).values()), f"{run.stats}\n{stdout[-6000:]}"
            assert "drift_guard" not in stdout, stdout[-6000:]
    if name == "oceanid GPU report":
        assert (tmp_path / "gpu_sessions_latest.csv").read_text(encoding="utf-8").strip(), "no CSV written"


@pytest.mark.parametrize("workflow", DATA["awx_workflow_job_templates"], ids=lambda w: w["name"])
def test_the_workflow_runs_its_nodes_in_order_with_its_data(workflow, launch, moto):
    answers = {
        q["variable"]: q["default"] for q in workflow["survey_spec"]["spec"] if q.get("default") not in (None, "")
    }
    answers["gpu_name"] = "calypso"  # the lab's GPU host stands in for the launched box (moto's has no network)
    nodes = {node["identifier"]: node for node in workflow["workflow_nodes"]}
    node = workflow["workflow_nodes"][0]
    ran = []
    while node:
        jt = awx_data.job_template(node["unified_job_template"]["name"], DATA)
        results = launch(jt, {**answers, **ANSWERS.get(jt.name, {})}, node.get("extra_data"))
        assert_successful(jt, results)
        ran.append(jt.playbook)
        following = node.get("related", {}).get("success_nodes", [])
        node = nodes[following[0]["identifier"]] if following else None
    assert ran == ["playbooks/gpu_launch.yml", "playbooks/site.yml", "playbooks/smoke.yml"]
    launched = moto.client("ec2", "us-east-1").describe_instances(
        Filters=[{"Name": "tag:Name", "Values": ["calypso"]}, {"Name": "instance-state-name", "Values": ["running"]}]
    )["Reservations"]
    assert launched, "the workflow's launch node left no running box named calypso in moto"
