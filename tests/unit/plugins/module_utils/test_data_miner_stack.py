# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner manifests (module_utils/data_miner.py manifests) for the seed's 3-node cluster: where each pod
may run compared with the seed's "Current Pod Distribution" table, storage-only nodes, and the seed's
"Issues Encountered" traps, one test each."""

from __future__ import annotations

import base64
import copy
import json

import pytest
import yaml

from ansible_collections.oceanid.fleet.plugins.module_utils.data_miner import grafana_datasources, manifests
from tests.unit.data_miner.seed import (
    POD_DISTRIBUTION,
    SECRETS,
    allowed_nodes,
    by_path,
    pod_spec,
    seed_config,
    seed_nodes,
)

NODES = seed_nodes()
RENDERED = manifests(seed_config(), NODES, SECRETS)
SEED = by_path(RENDERED)
WORKERS = ("download", "extract", "filter", "dedup", "detect", "monitor")
INFRASTRUCTURE = ("postgres", "loki", "grafana", "adminer")


def workload(rendered, name):
    """The Deployment or StatefulSet named ``name`` (e.g. download-worker, postgres)."""
    (manifest,) = [
        item["manifest"]
        for item in rendered
        if item["manifest"]["kind"] in ("Deployment", "StatefulSet") and item["manifest"]["metadata"]["name"] == name
    ]
    return manifest


def workload_of_pod(pod):
    """The workload a pod of the seed's table belongs to: download-worker-0 -> download-worker, postgres-0 ->
    postgres, grafana -> grafana."""
    for name in [f"{worker}-worker" for worker in WORKERS] + list(INFRASTRUCTURE):
        if pod == name or (pod.startswith(name + "-") and pod[len(name) + 1 :].isdigit()):
            return name
    raise AssertionError(f"no workload for the seed's pod {pod}")


def container(manifest):
    return pod_spec(manifest)["containers"][0]


def env_names(manifest):
    return [item["name"] for item in container(manifest).get("env", [])]


def test_the_seed_renders_the_seeds_manifest_layout():
    assert list(SEED) == [
        "namespace.yaml",
        "config/configmap.yaml",
        "config/secret-hf-token.yaml",
        "config/secret-postgres.yaml",
        "config/secret-grafana.yaml",
        "infrastructure/postgres-statefulset.yaml",
        "infrastructure/postgres-service.yaml",
        "infrastructure/loki-statefulset.yaml",
        "infrastructure/loki-service.yaml",
        "infrastructure/grafana-datasources-configmap.yaml",
        "infrastructure/grafana-deployment.yaml",
        "infrastructure/grafana-service.yaml",
        "infrastructure/adminer-deployment.yaml",
        "infrastructure/adminer-service.yaml",
        "workers/dedup-deployment.yaml",
        "workers/detect-deployment.yaml",
        "workers/download-service.yaml",
        "workers/download-statefulset.yaml",
        "workers/extract-deployment.yaml",
        "workers/filter-deployment.yaml",
        "workers/monitor-deployment.yaml",
    ]


@pytest.mark.parametrize(("pod", "node"), sorted(POD_DISTRIBUTION.items()))
def test_every_pod_of_the_seeds_distribution_table_may_run_where_it_ran(pod, node):
    assert node in allowed_nodes(workload(RENDERED, workload_of_pod(pod)), NODES)


def test_gpu_and_master_workers_and_the_infrastructure_can_only_land_on_pavanjci():
    for name in ["filter-worker", "dedup-worker", "detect-worker", "extract-worker", "monitor-worker"]:
        assert allowed_nodes(workload(RENDERED, name), NODES) == {"pavanjci"}, name
    for name in INFRASTRUCTURE:
        assert allowed_nodes(workload(RENDERED, name), NODES) == {"pavanjci"}, name


def test_download_workers_may_run_on_every_node_and_are_spread():
    manifest = SEED["workers/download-statefulset.yaml"]
    assert allowed_nodes(manifest, NODES) == {"pavanjci", "manthana", "arsenal"}
    assert manifest["spec"]["replicas"] == 3
    (spread,) = pod_spec(manifest)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert SEED["workers/download-service.yaml"]["spec"]["clusterIP"] == "None"
    assert manifest["spec"]["serviceName"] == "download-worker"


def test_a_storage_only_node_receives_no_worker_and_no_infrastructure_pod():
    nodes = seed_nodes(storage_only=["storage1"])
    rendered = manifests(seed_config(), nodes, SECRETS)
    for item in rendered:
        if item["manifest"]["kind"] in ("Deployment", "StatefulSet"):
            assert "storage1" not in allowed_nodes(item["manifest"], nodes), item["path"]
    # nothing else changed: the storage-only node is only SeaweedFS's business
    assert rendered == RENDERED


def test_a_storage_only_gpu_master_hosts_nothing():
    nodes = seed_nodes() + [{"name": "bigbox", "master": True, "gpu": True, "storage_only": True}]
    rendered = manifests(seed_config(), nodes, SECRETS)
    assert rendered == RENDERED


def test_infrastructure_is_pinned_to_the_first_master():
    nodes = seed_nodes()
    nodes[1]["master"] = True  # manthana becomes a second server
    rendered = manifests(seed_config(), nodes, SECRETS)
    assert allowed_nodes(workload(rendered, "postgres"), nodes) == {"pavanjci"}
    assert allowed_nodes(workload(rendered, "extract-worker"), nodes) == {"pavanjci", "manthana"}


def test_workers_have_no_liveness_probe_unless_they_declare_one():
    # The seed's trap: a liveness probe on /tmp/healthy that the workers never create (CrashLoopBackOff).
    for worker in WORKERS:
        manifest = workload(RENDERED, f"{worker}-worker")
        assert "livenessProbe" not in container(manifest), worker
    probe = {"exec": {"command": ["test", "-f", "/tmp/healthy"]}, "periodSeconds": 30}
    config = seed_config()
    config["workers"]["monitor"]["liveness_probe"] = probe
    rendered = manifests(config, NODES, SECRETS)
    assert container(workload(rendered, "monitor-worker"))["livenessProbe"] == probe
    assert "livenessProbe" not in container(workload(rendered, "extract-worker"))


def test_gpu_sharing_runtime_sets_no_gpu_limit():
    # The seed's trap: nvidia.com/gpu limits left GPU pods Pending on the one GPU.
    for item in RENDERED:
        assert "nvidia.com/gpu" not in json.dumps(item["manifest"]), item["path"]
    filter_worker = SEED["workers/filter-deployment.yaml"]
    assert "runtimeClassName" not in pod_spec(filter_worker)
    env = {item["name"]: item.get("value") for item in container(filter_worker)["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert "NVIDIA_VISIBLE_DEVICES" not in env_names(SEED["workers/download-statefulset.yaml"])


def test_gpu_sharing_device_plugin_limits_gpu_workers_to_one_gpu_with_the_nvidia_runtime_class():
    rendered = by_path(manifests(seed_config(gpu_sharing="device_plugin"), NODES, SECRETS))
    for worker in ("filter", "dedup", "detect"):
        manifest = rendered[f"workers/{worker}-deployment.yaml"]
        assert container(manifest)["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod_spec(manifest)["runtimeClassName"] == "nvidia"
        assert "NVIDIA_VISIBLE_DEVICES" not in env_names(manifest)
    assert "nvidia.com/gpu" not in json.dumps(rendered["workers/extract-deployment.yaml"])
    shared = by_path(
        manifests(seed_config(gpu_sharing="device_plugin", gpu_resource="nvidia.com/gpu.shared"), NODES, SECRETS)
    )
    assert container(shared["workers/filter-deployment.yaml"])["resources"]["limits"]["nvidia.com/gpu.shared"] == 1


def test_grafanas_datasource_urls_are_the_in_cluster_services_never_empty():
    # The seed's trap: the Loki datasource URL was empty, so Grafana showed no labels.
    rendered = by_path(manifests(seed_config(), NODES, SECRETS, dump=yaml.safe_dump))
    provisioning = yaml.safe_load(
        rendered["infrastructure/grafana-datasources-configmap.yaml"]["data"]["datasources.yaml"]
    )
    urls = {source["type"]: source["url"] for source in provisioning["datasources"]}
    assert urls == {
        "loki": "http://loki.data-miner.svc.cluster.local:3100",
        "postgres": "postgres.data-miner.svc.cluster.local:5432",
    }
    assert all(urls.values())
    services = {rendered[path]["metadata"]["name"] for path in rendered if path.endswith("-service.yaml")}
    assert {"loki", "postgres"} <= services
    volumes = pod_spec(rendered["infrastructure/grafana-deployment.yaml"])["volumes"]
    assert {"name": "datasources", "configMap": {"name": "grafana-datasources"}} in volumes


def test_grafana_datasources_follow_the_namespace_and_ports():
    config = seed_config(namespace="miner")
    config["infrastructure"]["loki"]["port"] = 3101
    sources = grafana_datasources(config)["datasources"]
    assert [source["url"] for source in sources] == [
        "http://loki.miner.svc.cluster.local:3101",
        "postgres.miner.svc.cluster.local:5432",
    ]


def test_an_empty_string_in_the_run_config_stays_empty_in_the_configmap():
    config_yaml = json.loads(SEED["config/configmap.yaml"]["data"]["config.yaml"])
    assert config_yaml["blocked_hashtag_patterns"] == ""
    assert config_yaml["output_dir"] == "/swdfs_mnt/swshared/data_miner_output"
    assert config_yaml["device"] == "auto"


def test_the_database_url_in_the_configmap_has_no_password_and_workers_read_it_from_the_secret():
    data = SEED["config/configmap.yaml"]["data"]
    assert data["DATABASE_URL"] == "postgresql://postgres@postgres.data-miner.svc.cluster.local:5432/data_miner"
    assert data["LOKI_URL"] == "http://loki.data-miner.svc.cluster.local:3100"
    for item in RENDERED:
        if item["manifest"]["kind"] == "ConfigMap":
            assert SECRETS["postgres_password"] not in json.dumps(item["manifest"])
    env = {item["name"]: item for item in container(SEED["workers/download-statefulset.yaml"])["env"]}
    assert env["DATABASE_URL"]["valueFrom"] == {"configMapKeyRef": {"name": "data-miner-config", "key": "DATABASE_URL"}}
    assert env["LOKI_URL"]["valueFrom"]["configMapKeyRef"]["key"] == "LOKI_URL"
    assert env["PGPASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "postgres-credentials", "key": "password"}}
    secret = SEED["config/secret-postgres.yaml"]["data"]
    assert base64.b64decode(secret["password"]).decode() == SECRETS["postgres_password"]


def test_hf_token_reaches_only_the_workers_that_ask_for_it():
    for worker in WORKERS:
        names = env_names(workload(RENDERED, f"{worker}-worker"))
        assert ("HF_TOKEN" in names) == (worker in ("filter", "dedup", "detect")), worker
    secret = SEED["config/secret-hf-token.yaml"]
    assert base64.b64decode(secret["data"]["HF_TOKEN"]).decode() == SECRETS["hf_token"]


def test_no_hf_token_secret_without_a_token_and_the_workers_do_not_change():
    rendered = manifests(seed_config(), NODES, {**SECRETS, "hf_token": ""})
    assert "config/secret-hf-token.yaml" not in by_path(rendered)
    assert [item for item in RENDERED if item["path"] != "config/secret-hf-token.yaml"] == rendered


def test_workers_mount_the_seaweedfs_share_from_the_host_with_host_to_container_propagation():
    manifest = SEED["workers/extract-deployment.yaml"]
    mounts = {mount["name"]: mount for mount in container(manifest)["volumeMounts"]}
    assert mounts["shared"] == {
        "name": "shared",
        "mountPath": "/swdfs_mnt/swshared",
        "mountPropagation": "HostToContainer",
    }
    volumes = {volume["name"]: volume for volume in pod_spec(manifest)["volumes"]}
    assert volumes["shared"]["hostPath"] == {"path": "/swdfs_mnt/swshared", "type": "Directory"}


def test_workers_use_the_image_pull_policy_and_preset_resources():
    download = container(SEED["workers/download-statefulset.yaml"])
    assert download["image"] == "data-miner:latest"
    assert download["imagePullPolicy"] == "Never"
    assert download["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }
    assert container(SEED["workers/detect-deployment.yaml"])["resources"]["limits"] == {"cpu": "2000m", "memory": "8Gi"}


def test_changing_one_workers_replicas_changes_only_that_manifest():
    config = seed_config()
    config["workers"]["extract"]["replicas"] = 4
    changed = by_path(manifests(config, NODES, SECRETS))
    assert list(changed) == list(SEED)
    differing = [path for path in SEED if SEED[path] != changed[path]]
    assert differing == ["workers/extract-deployment.yaml"]
    assert changed["workers/extract-deployment.yaml"]["spec"]["replicas"] == 4


def test_changing_the_app_config_rolls_the_workers_through_their_config_hash():
    config = seed_config()
    config["app_config"]["run_config"]["project"] = "other"
    changed = by_path(manifests(config, NODES, SECRETS))
    differing = {path for path in SEED if SEED[path] != changed[path]}
    assert differing == {"config/configmap.yaml"} | {
        path for path in SEED if path.startswith("workers/") and not path.endswith("-service.yaml")
    }


def test_the_render_is_deterministic_and_leaves_its_input_alone():
    config = seed_config()
    before = copy.deepcopy(config)
    assert manifests(config, NODES, SECRETS) == manifests(config, NODES, SECRETS) == RENDERED
    assert config == before


def test_every_object_carries_the_labels_the_role_prunes_by():
    config = seed_config(labels={"team": "vision"})
    for item in manifests(config, NODES, SECRETS):
        labels = item["manifest"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "oceanid.fleet.data_miner", item["path"]
        assert labels["app.kubernetes.io/part-of"] == "data-miner", item["path"]
        assert labels["team"] == "vision", item["path"]
        if item["manifest"]["kind"] != "Namespace":
            assert item["manifest"]["metadata"]["namespace"] == "data-miner", item["path"]


def test_infrastructure_persists_on_host_paths_of_the_master():
    volumes = pod_spec(SEED["infrastructure/postgres-statefulset.yaml"])["volumes"]
    assert volumes == [{"name": "data", "hostPath": {"path": "/data/data_miner_db", "type": "DirectoryOrCreate"}}]
    volumes = pod_spec(SEED["infrastructure/loki-statefulset.yaml"])["volumes"]
    assert volumes == [{"name": "data", "hostPath": {"path": "/data/data_miner_loki", "type": "DirectoryOrCreate"}}]


def test_pvc_persistence_claims_volumes_of_the_storage_class():
    config = seed_config(persistence="pvc", storage_class="local-path")
    rendered = by_path(manifests(config, NODES, SECRETS))
    claim = rendered["infrastructure/postgres-pvc.yaml"]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "10Gi"}},
        "storageClassName": "local-path",
    }
    volumes = pod_spec(rendered["infrastructure/postgres-statefulset.yaml"])["volumes"]
    assert volumes == [{"name": "data", "persistentVolumeClaim": {"claimName": "postgres-data"}}]
    assert "infrastructure/loki-pvc.yaml" in rendered
    assert "hostPath" not in json.dumps(rendered["infrastructure/postgres-statefulset.yaml"])


def test_node_ports_are_the_seeds():
    assert SEED["infrastructure/grafana-service.yaml"]["spec"]["ports"][0]["nodePort"] == 30300
    assert SEED["infrastructure/adminer-service.yaml"]["spec"]["ports"][0]["nodePort"] == 30080
    assert SEED["infrastructure/grafana-service.yaml"]["spec"]["type"] == "NodePort"


def test_a_disabled_service_is_not_rendered_and_nothing_points_at_it():
    config = seed_config()
    config["infrastructure"]["loki"] = {"enabled": False}
    del config["infrastructure"]["adminer"]
    rendered = by_path(manifests(config, NODES, SECRETS))
    assert not [path for path in rendered if "loki" in path or "adminer" in path]
    assert "LOKI_URL" not in rendered["config/configmap.yaml"]["data"]
    assert "LOKI_URL" not in env_names(rendered["workers/download-statefulset.yaml"])


def test_a_gpu_worker_scaled_to_zero_without_a_gpu_node_renders_pinned_nowhere():
    nodes = [dict(node, gpu=False) for node in seed_nodes()]
    config = seed_config()
    for name in ("filter", "dedup", "detect"):
        config["workers"][name]["replicas"] = 0
    rendered = by_path(manifests(config, nodes, SECRETS))
    assert allowed_nodes(rendered["workers/filter-deployment.yaml"], nodes) == set()
    assert rendered["workers/filter-deployment.yaml"]["spec"]["replicas"] == 0


def test_worker_command_args_and_env_are_passed_through():
    config = seed_config()
    config["workers"]["monitor"].update(
        command=["python", "-m", "data_miner.cli"], args=["monitor"], env={"LOG_LEVEL": "debug", "BATCH": 8}
    )
    monitor = container(workload(manifests(config, NODES, SECRETS), "monitor-worker"))
    assert monitor["command"] == ["python", "-m", "data_miner.cli"]
    assert monitor["args"] == ["monitor"]
    assert {"name": "BATCH", "value": "8"} in monitor["env"]
    assert monitor["env"][-2:] == [{"name": "BATCH", "value": "8"}, {"name": "LOG_LEVEL", "value": "debug"}]


def test_every_object_is_named_once_whatever_the_kinds():
    config = seed_config()
    for service in INFRASTRUCTURE:
        config["infrastructure"][service]["kind"] = "StatefulSet"
    config["workers"]["extract"]["kind"] = "StatefulSet"
    for rendered in (RENDERED, manifests(config, NODES, SECRETS)):
        names = [(item["manifest"]["kind"], item["manifest"]["metadata"]["name"]) for item in rendered]
        assert len(names) == len(set(names))
        paths = [item["path"] for item in rendered]
        assert len(paths) == len(set(paths))
    services = {item["manifest"]["metadata"]["name"] for item in rendered if item["manifest"]["kind"] == "Service"}
    for item in rendered:
        if item["manifest"]["kind"] == "StatefulSet":
            assert item["manifest"]["spec"]["serviceName"] in services, item["path"]
