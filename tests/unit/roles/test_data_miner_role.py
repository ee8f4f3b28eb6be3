# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner role run by ansible-playbook on this machine, for the seed's cluster written as an inventory.

Every host is reached with the local connection and nothing needs one: the role renders on the controller. No
Kubernetes API server exists here, so the apply path runs with --check --diff up to its first API call, which
kubernetes.core.k8s cannot make without a server even in check mode; what comes before it is checked.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env

ROLE = Path(__file__).resolve().parents[3] / "roles" / "data_miner"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
LIST_FILE = ".oceanid-data-miner-manifests"
HF_TOKEN = "hf_unit-test-token-0123456789"

PLAYBOOK = f"""
- name: The data-miner stack
  hosts: k3s_servers:k3s_agents
  gather_facts: false
  roles:
    - role: {ROLE}
"""

# The seed's cluster_config.yaml nodes: pavanjci is the master with the GPU, manthana and arsenal are workers,
# storage1 is its storage-only template node.
SEED_FILES = {
    "namespace.yaml",
    "config/configmap.yaml",
    "config/secret-hf-token.yaml",
    "infrastructure/postgres-statefulset.yaml",
    "infrastructure/postgres-service.yaml",
    "infrastructure/loki-statefulset.yaml",
    "infrastructure/loki-service.yaml",
    "infrastructure/grafana-deployment.yaml",
    "infrastructure/grafana-service.yaml",
    "infrastructure/adminer-deployment.yaml",
    "infrastructure/adminer-service.yaml",
    "workers/download-statefulset.yaml",
    "workers/extract-deployment.yaml",
    "workers/filter-deployment.yaml",
    "workers/dedup-deployment.yaml",
    "workers/detect-deployment.yaml",
    "workers/monitor-deployment.yaml",
}


def write_inventory(tmp_path: Path, **overrides) -> Path:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {
            "vars": {
                **local,
                "data_miner_render_only": True,
                "data_miner_render_dir": str(tmp_path / "manifests"),
                "data_miner_hf_token": HF_TOKEN,
                **overrides,
            },
            "children": {
                "k3s_servers": {"hosts": {"pavanjci": {"seaweedfs_disk_limit_mb": 50000}}},
                "k3s_agents": {"hosts": {"manthana": {}, "arsenal": {}}},
                "gpu_hosts": {"hosts": {"pavanjci": {}}},
                "storage_nodes": {
                    "hosts": {
                        "manthana": {"seaweedfs_disk_limit_mb": 100000},
                        "arsenal": {"seaweedfs_disk_limit_mb": 100000},
                        "storage1": {"seaweedfs_disk_limit_mb": 500000, "seaweedfs_storage_only": True},
                    }
                },
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return path


def run(tmp_path: Path, *args: str, **overrides) -> subprocess.CompletedProcess:
    inventory = write_inventory(tmp_path, **overrides)
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook), *args],
        env=isolated_ansible_env(tmp_path / "env"),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def changed(result: subprocess.CompletedProcess) -> int:
    counts = re.findall(r"changed=(\d+)", result.stdout)
    assert counts, result.stdout
    return sum(int(count) for count in counts)


def files(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "manifests"
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in root.rglob("*")
        if path.is_file() and path.name != LIST_FILE
    }


@pytest.fixture(name="rendered")
def fixture_rendered(tmp_path):
    """A fresh render for a test that changes it."""
    result = run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path, result


@pytest.fixture(name="seed_render", scope="module")
def fixture_seed_render(tmp_path_factory):
    """One render shared by the tests that only read it."""
    tmp_path = tmp_path_factory.mktemp("seed")
    result = run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path, result


def test_render_only_writes_the_seeds_layout(seed_render):
    tmp_path, _result = seed_render
    written = files(tmp_path)
    assert set(written) >= SEED_FILES, sorted(SEED_FILES - set(written))
    listed = (tmp_path / "manifests" / LIST_FILE).read_text(encoding="utf-8").splitlines()[1:]
    assert set(listed) == set(written)
    for text in written.values():
        assert text.startswith("# Rendered by oceanid.fleet.data_miner")
        manifest = yaml.safe_load(text)
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "oceanid.fleet.data_miner"
    modes = {path.stat().st_mode & 0o777 for path in (tmp_path / "manifests").rglob("*") if path.is_file()}
    assert modes == {0o600}


def test_storage_only_node_gets_no_worker_and_infrastructure_stays_on_the_master(seed_render):
    tmp_path, _result = seed_render
    for name, text in files(tmp_path).items():
        manifest = yaml.safe_load(text)
        if manifest["kind"] not in ("Deployment", "StatefulSet"):
            continue
        terms = manifest["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        nodes = {value for term in terms for expr in term["matchExpressions"] for value in expr["values"]}
        assert "storage1" not in nodes, name
        if name.startswith("infrastructure/"):
            assert nodes == {"pavanjci"}, name
    download = yaml.safe_load(files(tmp_path)["workers/download-statefulset.yaml"])
    expression = download["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert set(expression["values"]) == {"pavanjci", "manthana", "arsenal"}


def test_passwords_are_generated_once_kept_private_and_never_postgres(seed_render):
    tmp_path, _result = seed_render
    secrets_dir = tmp_path / ".data-miner"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    assert (secrets_dir / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"
    for name in ("postgres-password", "grafana-admin-password"):
        path = secrets_dir / name
        assert path.stat().st_mode & 0o777 == 0o600
        password = path.read_text(encoding="utf-8").strip()
        assert len(password) == 32 and password != "postgres"


def test_second_run_changes_nothing(rendered):
    tmp_path, _first = rendered
    before = files(tmp_path)
    second = run(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert changed(second) == 0, second.stdout
    assert files(tmp_path) == before


def test_a_replicas_change_rewrites_one_file(rendered):
    tmp_path, _first = rendered
    before = files(tmp_path)
    workers = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["data_miner_workers"]
    workers["extract"]["replicas"] = 4
    result = run(tmp_path, data_miner_workers=workers)
    assert result.returncode == 0, result.stdout + result.stderr
    after = files(tmp_path)
    assert {name for name in after if after[name] != before.get(name)} == {"workers/extract-deployment.yaml"}
    assert yaml.safe_load(after["workers/extract-deployment.yaml"])["spec"]["replicas"] == 4
    assert "Rewritten in" in result.stdout and "workers/extract-deployment.yaml" in result.stdout


def test_a_removed_worker_loses_its_file(rendered):
    tmp_path, _first = rendered
    workers = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["data_miner_workers"]
    del workers["detect"]
    result = run(tmp_path, data_miner_workers=workers)
    assert result.returncode == 0, result.stdout + result.stderr
    after = files(tmp_path)
    assert "workers/detect-deployment.yaml" not in after
    assert "workers/filter-deployment.yaml" in after
    assert "workers/detect-deployment.yaml" not in (tmp_path / "manifests" / LIST_FILE).read_text(encoding="utf-8")
    again = run(tmp_path, data_miner_workers=workers)
    assert changed(again) == 0, again.stdout


def test_bad_input_fails_preflight_naming_the_field_and_the_host_and_keeps_the_render(rendered):
    tmp_path, _first = rendered
    before = files(tmp_path)
    workers = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["data_miner_workers"]
    workers["download"]["schedule_on"] = "everywhere"
    result = run(tmp_path, data_miner_workers=workers)
    assert result.returncode != 0
    assert "Check the configuration against the inventory" in result.stdout
    assert "schedule_on" in result.stdout and "download" in result.stdout
    assert "checked on pavanjci" in result.stdout
    assert files(tmp_path) == before


def test_a_manifest_the_schema_rejects_writes_nothing(rendered):
    tmp_path, _first = rendered
    before = files(tmp_path)
    workers = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["data_miner_workers"]
    workers["extract"]["liveness_probe"] = {"exec": {"command": ["true"]}, "periodSecondz": 10}
    result = run(tmp_path, data_miner_workers=workers)
    assert result.returncode != 0
    assert "Refuse manifests that the Kubernetes schema rejects" in result.stdout
    assert "workers/extract-deployment.yaml" in result.stdout and "periodSecondz" in result.stdout
    assert files(tmp_path) == before


def test_an_unknown_reference_fails_naming_it(tmp_path):
    result = run(tmp_path, data_miner_k3s_app_overrides={"output_dir": "${storage.nowhere}/out"})
    assert result.returncode != 0
    assert "storage.nowhere" in result.stdout + result.stderr
    assert not (tmp_path / "manifests" / "namespace.yaml").exists()


def test_a_wipe_needs_the_masters_name(tmp_path):
    result = run(tmp_path, data_miner_state="absent", data_miner_wipe_data=True, data_miner_render_only=False)
    assert result.returncode != 0
    assert "data_miner_wipe_confirm must be the master's inventory name, 'pavanjci'" in result.stdout


def test_absent_in_render_only_mode_removes_the_rendered_files(rendered):
    tmp_path, _first = rendered
    result = run(tmp_path, data_miner_state="absent")
    assert result.returncode == 0, result.stdout + result.stderr
    assert files(tmp_path) == {}
    assert not (tmp_path / "manifests" / LIST_FILE).exists()


def test_check_diff_of_the_apply_path_stops_at_the_api(rendered):
    """--check --diff in apply mode against the rendered set: nothing on disk changes, the render matches the
    files (no diff), and the first API call fails because no server exists (kubernetes.core.k8s needs one even
    in check mode)."""
    tmp_path, _first = rendered
    before = files(tmp_path)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        ),
        encoding="utf-8",
    )
    result = run(
        tmp_path,
        "--check",
        "--diff",
        data_miner_render_only=False,
        data_miner_k8s_host="localhost",
        data_miner_kubeconfig=str(kubeconfig),
    )
    output = result.stdout + result.stderr
    assert files(tmp_path) == before
    write_task = output.split(": Write the manifests]")[1].split("TASK [")[0]
    assert "changed:" not in write_task and "---" not in write_task  # no diff: the rendered set is what was written
    # Before the API: Loki's hostPath directory (owner 10001, the uid Loki runs as) on the node its StatefulSet is
    # pinned to, both read from the rendered StatefulSet (check mode: reported, not made).
    loki_task = output.split(": Create Loki's hostPath directory owned by the uid Loki runs as]")[1].split("TASK [")[0]
    assert "changed: [pavanjci] => (item=pavanjci:/data/data_miner_loki)" in loki_task, loki_task
    assert ": Apply the manifests, server-side]" in output
    assert result.returncode != 0, output  # no API server
    assert re.search(r"Connection refused|Max retries exceeded", output), output


def test_the_image_is_imported_once_per_digest_on_the_worker_nodes(tmp_path):
    """A fake k3s records its calls; the apply path is left out by tags (no API server here)."""
    calls = tmp_path / "k3s-calls"
    k3s = tmp_path / "k3s"
    k3s.write_text(f'#!/bin/sh\necho "$(hostname) $*" >> {calls}\n', encoding="utf-8")
    k3s.chmod(0o755)
    tarball = tmp_path / "data-miner.tar"
    tarball.write_bytes(b"image v1")
    settings = {
        "data_miner_render_only": False,
        "data_miner_image_tarball": str(tarball),
        "data_miner_k3s_binary": str(k3s),
        "data_miner_image_dir": str(tmp_path / "nodes") + "/{{ inventory_hostname }}",
    }
    tags = ("--tags", "data_miner_preflight,data_miner_render,data_miner_image")

    def imports() -> int:
        return len(calls.read_text(encoding="utf-8").splitlines()) if calls.exists() else 0

    first = run(tmp_path, *tags, **settings)
    assert first.returncode == 0, first.stdout + first.stderr
    assert imports() == 3  # pavanjci, manthana, arsenal; storage1 is not a worker node
    assert "ctr -n k8s.io images import" in calls.read_text(encoding="utf-8")
    for node in ("pavanjci", "manthana", "arsenal"):
        state = tmp_path / "nodes" / node / "data-miner.tar.imported.sha256"
        assert len(state.read_text(encoding="utf-8").strip()) == 64
    second = run(tmp_path, *tags, **settings)
    assert second.returncode == 0, second.stdout + second.stderr
    assert imports() == 3 and changed(second) == 0, second.stdout
    tarball.write_bytes(b"image v2")
    third = run(tmp_path, *tags, **settings)
    assert third.returncode == 0, third.stdout + third.stderr
    assert imports() == 6


def test_a_missing_tarball_fails_naming_it(tmp_path):
    result = run(tmp_path, data_miner_render_only=False, data_miner_image_tarball=str(tmp_path / "nowhere.tar"))
    assert result.returncode != 0
    assert f"data_miner_image_tarball '{tmp_path / 'nowhere.tar'}' is not a file on the controller" in result.stdout


def test_no_secret_reaches_the_verbose_output(tmp_path):
    result = run(tmp_path, "-vvv", "--diff")
    assert result.returncode == 0, result.stdout + result.stderr
    secrets = [HF_TOKEN]
    for name in ("postgres-password", "grafana-admin-password"):
        secrets.append((tmp_path / ".data-miner" / name).read_text(encoding="utf-8").strip())
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output
        assert base64.b64encode(secret.encode()).decode() not in output
    # the Secrets themselves carry them (stringData or data)
    rendered = "".join(files(tmp_path).values())
    assert all(secret in rendered or base64.b64encode(secret.encode()).decode() in rendered for secret in secrets)
