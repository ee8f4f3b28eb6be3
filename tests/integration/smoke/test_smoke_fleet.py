# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/smoke.yml on the converged demo fleet (issue 18): the JSON report, the table, the summary, check mode,
and a failure that is reported with its reason and a non-zero exit.

Uses the session's `demo_fleet` (tests/integration/conftest.py: boots inventories/lab if needed and converges
site.yml once). Needs root (the lab); run it under `flock /tmp/oceanid-lab.lock` like the other lab tests. The
smoke itself is read-only, so the shared fleet keeps serving; the failure case points the smoke at a model that
does not exist (an extra var) instead of stopping a service.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

ANSIBLE_INVENTORY = str(Path(sys.executable).with_name("ansible-inventory"))
MISSING_MODEL = "oceanid_smoke_no_such_model"
STATUSES = {"ok", "failed", "not run"}


def hostvars(fleet, host: str) -> dict:
    out = subprocess.run(
        [ANSIBLE_INVENTORY, "-i", str(fleet.inventory), "--host", host],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return json.loads(out)


def smoke(fleet, report: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = fleet.playbook("playbooks/smoke.yml", "-e", f"fleet_smoke_report_path={report}", *args, timeout=900)
    assert report.exists(), proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc, json.loads(report.read_text(encoding="utf-8"))


def flat(output: str) -> str:
    """The output with every run of whitespace as one space (the YAML callback folds long lines)."""
    return " ".join(output.split())


def recap_changed(output: str) -> dict[str, int]:
    return {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.MULTILINE)}


@pytest.fixture(scope="module")
def green(demo_fleet, tmp_path_factory):
    report = tmp_path_factory.mktemp("smoke") / "smoke-report.json"
    return smoke(demo_fleet, report)


def expected_checks(fleet) -> set[tuple[str, str, str]]:
    """Every (layer, check, host) the demo fleet's report must have."""
    calypso = hostvars(fleet, "calypso")
    models = [m["name"] for m in calypso.get("triton_server_models", []) if m.get("load", True) is not False]
    puller = [m["name"] for m in calypso.get("model_puller_models", [])]
    checks = {("hosts", "reachable", host) for host in ("calypso", "seaweed1", "tethys")}
    checks |= {("serving", "triton live", "calypso"), ("serving", "triton ready", "calypso")}
    for name in dict.fromkeys(models + puller):
        checks |= {("serving", f"model {name} READY", "calypso"), ("serving", f"inference {name}", "calypso")}
    if puller:
        checks |= {("serving", f"model puller {name}", "calypso") for name in puller}
    else:
        checks.add(("serving", "model puller status file", "calypso"))
    checks |= {
        ("storage", "seaweedfs master leader", "seaweed1"),
        ("storage", "seaweedfs volume servers", "seaweed1"),
        ("storage", "seaweedfs filer", "seaweed1"),
        ("storage", "s3 round trip", "seaweed1"),
        ("labelling", "label studio tables", "tethys"),
        ("labelling", "adapter /health", "tethys"),
        ("labelling", "adapter prediction", "tethys"),
        ("labelling", "label studio 302", "tethys"),
        ("edge", "cloudflared config valid", "calypso"),
        ("edge", "cloudflared connector", "calypso"),
        ("cluster", "k3s nodes Ready", "tethys"),
        ("workloads", "data-miner manifests rendered", "localhost"),
        ("workloads", "data-miner applied", "localhost"),
    }
    return checks


def test_green_report_has_every_check(demo_fleet, green):
    proc, report = green
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    records = report["checks"]
    assert all(set(item) == {"layer", "check", "host", "status", "detail"} for item in records)
    assert {item["status"] for item in records} <= STATUSES
    seen = {(item["layer"], item["check"], item["host"]) for item in records}
    assert seen == expected_checks(demo_fleet)
    assert len(seen) == len(records)  # no check twice
    assert report["ok"] is True and report["counts"]["failed"] == 0
    assert report["counts"] == {s: sum(1 for item in records if item["status"] == s) for s in STATUSES}


def test_serving_storage_and_labelling_checks_pass(demo_fleet, green):
    records = {(item["layer"], item["check"]): item for item in green[1]["checks"]}
    for (layer, check), item in records.items():
        if layer in ("hosts", "storage", "labelling") or (layer == "serving" and not check.startswith("model puller")):
            assert item["status"] == "ok", item
    calypso = hostvars(demo_fleet, "calypso")["ansible_host"]
    assert records[("serving", "triton live")]["detail"] == f"GET http://{calypso}:8000/v2/health/live: live"
    assert "version 1 READY" in records[("serving", "model tiny_onnx_python READY")]["detail"]
    assert "sent x FP32[1, 4]; got y FP32[1, 3]" in records[("serving", "inference tiny_onnx_python")]["detail"]
    assert '\\"engine\\": \\"pypdf\\"' in records[("serving", "inference docling_granite_python")]["detail"]
    assert "put, got back the same 4096 bytes and deleted" in records[("storage", "s3 round trip")]["detail"]
    assert "302 to http" in records[("labelling", "label studio 302")]["detail"]
    assert 'reads "oceanid smoke check"' in records[("labelling", "adapter prediction")]["detail"]


def test_lab_only_checks_are_not_run_with_their_reasons(green):
    records = {(item["layer"], item["check"]): item for item in green[1]["checks"]}
    reasons = {
        ("edge", "cloudflared config valid"): "no fleet_cloudflare_api_token in this inventory",
        ("edge", "cloudflared connector"): "no cloudflared configuration on this host",
        ("cluster", "k3s nodes Ready"): "fleet_k3s_enabled is false in this inventory",
        ("workloads", "data-miner applied"): "data_miner_render_only is true",
    }
    for key, reason in reasons.items():
        assert records[key]["status"] == "not run", records[key]
        assert reason in records[key]["detail"], records[key]
    assert records[("workloads", "data-miner manifests rendered")]["status"] == "ok"
    puller = [item for (layer, check), item in records.items() if check.startswith("model puller")]
    for item in puller:
        assert item["status"] == "ok" or (
            item["status"] == "not run" and "model_puller_models is empty" in item["detail"]
        ), item


def test_table_and_summary_on_the_terminal(demo_fleet, green):
    proc, report = green
    text = flat(proc.stdout)
    assert "layer | check | host | status | detail" in text
    assert re.search(r"serving \| triton live \| calypso \| ok \| GET http://", text)
    assert f"ok {report['counts']['ok']}, failed 0, not run {report['counts']['not run']}; JSON: " in text
    calypso = hostvars(demo_fleet, "calypso")["ansible_host"]
    tethys = hostvars(demo_fleet, "tethys")["ansible_host"]
    assert "What serves where" in text
    assert f"calypso Triton HTTP (KServe v2) http://{calypso}:8000/v2" in text
    assert f"tethys Label Studio http://{tethys}:8080/" in text
    assert "group_vars/label_studio_hosts/labelling.yml" in text
    assert "lab-admin-change-me" not in proc.stdout  # where the credentials are, never their values


def test_changes_nothing_and_is_green_in_check_mode(demo_fleet, green, tmp_path):
    assert set(recap_changed(green[0].stdout).values()) == {0}
    proc, report = smoke(demo_fleet, tmp_path / "check.json", "--check")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert set(recap_changed(proc.stdout).values()) == {0}
    assert report["ok"] is True


def test_host_state_agrees_with_the_report(demo_fleet, green, monkeypatch):
    """testinfra on the hosts: the services the report calls serving run, and the S3 round trip left nothing."""
    # testinfra's ansible backend runs ansible-inventory from PATH: this venv's, also when pytest is run directly.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    inventory = str(demo_fleet.inventory)
    calypso = testinfra.get_host(f"ansible://calypso?ansible_inventory={inventory}", sudo=True)
    tethys = testinfra.get_host(f"ansible://tethys?ansible_inventory={inventory}", sudo=True)
    seaweed1 = testinfra.get_host(f"ansible://seaweed1?ansible_inventory={inventory}", sudo=True)
    assert calypso.service("tritonserver").is_running
    assert tethys.service("ls-triton-adapter").is_running
    address = hostvars(demo_fleet, "seaweed1")["ansible_host"]
    listing = seaweed1.run(
        'python3 -c "import urllib.request; print(urllib.request.urlopen(urllib.request.Request('
        f"'http://{address}:8888/buckets/models/.oceanid-smoke/', headers={{'Accept': 'application/json'}})).read().decode())\""
    )
    if listing.rc == 0:
        entries = json.loads(listing.stdout or "{}").get("Entries") or []
        assert entries == [], entries  # every round-trip object was deleted again
    else:
        assert "404" in listing.stderr, listing.stderr  # no such directory: nothing left either


def test_a_missing_model_fails_the_smoke_with_its_reason(demo_fleet, tmp_path):
    proc, report = smoke(
        demo_fleet, tmp_path / "failed.json", "-e", json.dumps({"fleet_smoke_extra_models": [MISSING_MODEL]})
    )
    assert proc.returncode != 0
    records = {(item["layer"], item["check"]): item for item in report["checks"]}
    ready = records[("serving", f"model {MISSING_MODEL} READY")]
    assert ready["status"] == "failed"
    assert ready["detail"].startswith("not in the repository index (it lists: ")
    infer = records[("serving", f"inference {MISSING_MODEL}")]
    assert infer == {
        **infer,
        "status": "not run",
        "detail": f"the model is not READY (see: model {MISSING_MODEL} READY)",
    }
    assert report["ok"] is False and report["counts"]["failed"] == 1
    text = flat(proc.stdout + proc.stderr)
    assert (
        f"1 smoke check(s) failed: serving/model {MISSING_MODEL} READY on calypso: not in the repository index" in text
    )
    assert "What serves where" in text  # the summary still comes before the failure


def test_a_limit_without_localhost_is_refused(demo_fleet, tmp_path):
    report = tmp_path / "limited.json"
    proc = demo_fleet.playbook("playbooks/smoke.yml", "--limit", "calypso", "-e", f"fleet_smoke_report_path={report}")
    assert proc.returncode != 0
    assert "--limit calypso leaves out localhost, where the smoke report is made" in flat(proc.stdout + proc.stderr)
    assert not report.exists()
