# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The seaweedfs role's k8s mode: the seed's cluster rendered by the role itself, checked offline.

No Kubernetes API server is reachable here, so every manifest the role renders for the data-miner seed's
inventory is validated against the Kubernetes OpenAPI schema of the cluster's version (strict: unknown
fields fail) with kubernetes-validate, and compared with the layout the seed describes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env

kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROLE = Path(__file__).resolve().parents[3] / "roles" / "seaweedfs"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
K8S_VERSION = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["seaweedfs_k8s_version"]

# The seed's cluster_config.yaml: pavanjci is the control plane and GPU node (master and filer), manthana and
# arsenal are workers, storage1 is the template's storage-only node.
SEED_NODES = {"pavanjci": 50000, "manthana": 100000, "arsenal": 100000, "storage1": 500000}
# The seed's manifests/seaweedfs/ listing, with volume-{hostname}-statefulset.yaml per node.
SEED_FILES = {
    "namespace.yaml",
    "master-statefulset.yaml",
    "master-service.yaml",
    "filer-statefulset.yaml",
    "filer-service.yaml",
    "mount-daemonset.yaml",
} | {f"volume-{node}-statefulset.yaml" for node in SEED_NODES}
# What the role adds: the Secret with filer.toml and the S3 identities, and the volume servers' headless Service.
EXTRA_FILES = {"config-secret.yaml", "volume-service.yaml"}

PLAYBOOK = f"""
- name: Render the seaweedfs manifests
  hosts: all
  gather_facts: false
  roles:
    - role: {ROLE}
"""


def seed_inventory(tmp_path: Path, masters=("pavanjci",), **overrides) -> Path:
    storage = {name: {"seaweedfs_disk_limit_mb": limit} for name, limit in SEED_NODES.items()}
    storage["storage1"]["seaweedfs_storage_only"] = True
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "seaweedfs_mode": "k8s",
                "seaweedfs_k8s_host": "localhost",
                "seaweedfs_k8s_manifest_dir": str(tmp_path / "manifests"),
                "seaweedfs_s3_identities": [
                    {
                        "name": "miner",
                        "access_key": "AKMINER",
                        "secret_key": "miner-secret",
                        "actions": ["Read", "List", "Write"],
                    }
                ],
                **overrides,
            },
            "children": {
                "k3s_servers": {"hosts": {"pavanjci": {}}},
                "k3s_agents": {"hosts": {"manthana": {}, "arsenal": {}}},
                "gpu_hosts": {"hosts": {"pavanjci": {}}},
                "seaweedfs_masters": {"hosts": {name: {} for name in masters}},
                "storage_nodes": {"hosts": storage},
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return path


def run_role(tmp_path: Path, env: dict, inventory: Path) -> subprocess.CompletedProcess:
    playbook = tmp_path / "render.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def render(tmp_path: Path, env: dict, **kwargs) -> dict[str, dict]:
    result = run_role(tmp_path, env, seed_inventory(tmp_path, **kwargs))
    assert result.returncode == 0, result.stdout + result.stderr
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in (tmp_path / "manifests").iterdir()}


@pytest.fixture(name="manifests", scope="module")
def fixture_manifests(tmp_path_factory):
    """The seed's cluster, rendered once for the tests that only read it."""
    tmp_path = tmp_path_factory.mktemp("seed")
    return render(tmp_path, isolated_ansible_env(tmp_path))


def container(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


def flag(args: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in args if arg.startswith(f"-{name}="))


def test_every_manifest_is_valid_for_the_clusters_kubernetes_version(manifests):
    assert K8S_VERSION == "1.31"  # the seed's k3s v1.31.0+k3s1
    for name, manifest in manifests.items():
        # strict: an unknown or misspelt field fails, as `kubectl apply --validate=strict` would
        kubernetes_validate.validate(manifest, f"{K8S_VERSION}.0", strict=True)
        assert manifest["metadata"]["name"], name


def test_a_broken_manifest_is_rejected_by_the_same_validation(manifests):
    broken = json.loads(json.dumps(manifests["mount-daemonset.yaml"]))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, f"{K8S_VERSION}.0", strict=True)


def test_layout_is_the_seeds(manifests):
    assert set(manifests) == SEED_FILES | EXTRA_FILES
    kinds = {name: manifest["kind"] for name, manifest in manifests.items()}
    assert kinds["namespace.yaml"] == "Namespace"
    assert {kinds[name] for name in SEED_FILES if "statefulset" in name} == {"StatefulSet"}
    assert kinds["mount-daemonset.yaml"] == "DaemonSet"
    assert {kinds["master-service.yaml"], kinds["filer-service.yaml"], kinds["volume-service.yaml"]} == {"Service"}
    assert {manifest["metadata"].get("namespace", manifest["metadata"]["name"]) for manifest in manifests.values()} == {
        "seaweedfs"
    }


def test_one_volume_statefulset_per_node_with_its_disk_limit(manifests):
    for node, limit in SEED_NODES.items():
        volume = manifests[f"volume-{node}-statefulset.yaml"]
        spec = volume["spec"]["template"]["spec"]
        args = container(volume)["args"]
        assert volume["spec"]["replicas"] == 1
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": node}
        assert flag(args, "max") == str(limit // 30000)  # whole 30000 MB volumes in the node's limit
        assert volume["metadata"]["annotations"]["oceanid.fleet/disk-limit-mb"] == str(limit)
        assert flag(args, "master") == "master-0.master.seaweedfs.svc.cluster.local:9333"
        assert spec["volumes"][0]["hostPath"]["path"] == "/data/seaweed/volume"


def test_master_and_filer_on_the_control_plane_node(manifests):
    for name in ("master-statefulset.yaml", "filer-statefulset.yaml"):
        manifest = manifests[name]
        terms = manifest["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms == [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["pavanjci"]}]}
        ]
        assert manifest["spec"]["replicas"] == 1
    assert flag(container(manifests["master-statefulset.yaml"])["args"], "peers") == "none"
    filer_args = container(manifests["filer-statefulset.yaml"])["args"]
    assert "-s3" in filer_args and flag(filer_args, "s3.config") == "/etc/seaweedfs/s3.json"


def test_mount_daemonset_skips_storage_only_nodes_and_cleans_stale_mounts(manifests):
    mount = manifests["mount-daemonset.yaml"]
    spec = mount["spec"]["template"]["spec"]
    expression = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]
    assert expression == {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["storage1"]}
    main = container(mount)
    assert main["securityContext"]["privileged"] is True
    assert {"name": "MOUNT_DIR", "value": "/swdfs_mnt/swshared"} in main["env"]
    assert main["args"][0].startswith('fusermount3 -uz "$MOUNT_DIR"')
    assert "fusermount3 -uz" in main["lifecycle"]["preStop"]["exec"]["command"][2]
    assert "-allowOthers=true" in main["args"][0]
    assert "filer.seaweedfs.svc.cluster.local:8888/healthz" in spec["initContainers"][0]["command"][2]
    assert {volume["name"]: volume["hostPath"]["path"] for volume in spec["volumes"]}["fuse"] == "/dev/fuse"


def test_secret_carries_the_identities_and_no_anonymous_access(manifests):
    secret = manifests["config-secret.yaml"]
    s3_config = json.loads(secret["stringData"]["s3.json"])
    assert s3_config == {
        "identities": [
            {
                "name": "miner",
                "actions": ["Read", "List", "Write"],
                "credentials": [{"accessKey": "AKMINER", "secretKey": "miner-secret"}],
            }
        ]
    }
    assert "[leveldb2]" in secret["stringData"]["filer.toml"]
    assert "copy_1 = 7" in secret["stringData"]["master.toml"]
    # the master pod sees master.toml only, not the S3 keys
    master_volumes = {
        volume["name"]: volume for volume in manifests["master-statefulset.yaml"]["spec"]["template"]["spec"]["volumes"]
    }
    assert master_volumes["config"]["secret"]["items"] == [{"key": "master.toml", "path": "master.toml"}]


def test_three_masters_form_a_raft_group(tmp_path, clean_ansible_env):
    manifests = render(tmp_path, clean_ansible_env, masters=("pavanjci", "manthana", "arsenal"))
    master = manifests["master-statefulset.yaml"]
    assert master["spec"]["replicas"] == 3
    peers = [f"master-{index}.master.seaweedfs.svc.cluster.local:9333" for index in range(3)]
    assert flag(container(master)["args"], "peers") == ",".join(peers)
    assert flag(container(manifests["volume-arsenal-statefulset.yaml"])["args"], "master") == ",".join(peers)
    kubernetes_validate.validate(master, f"{K8S_VERSION}.0", strict=True)


def test_a_disk_limit_below_one_volume_fails_naming_host_and_variable(tmp_path, clean_ansible_env):
    inventory = seed_inventory(tmp_path, seaweedfs_volume_size_limit_mb=60000)
    result = run_role(tmp_path, clean_ansible_env, inventory)
    assert result.returncode != 0
    assert "pavanjci: seaweedfs_disk_limit_mb=50000 is smaller than one volume" in result.stdout + result.stderr
    assert not (tmp_path / "manifests").exists()
