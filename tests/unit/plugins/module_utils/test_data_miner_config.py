# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner configuration checks (module_utils/data_miner.py config_errors): every problem named by its
field, before anything is rendered or applied."""

from __future__ import annotations

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.data_miner import DataMinerError, manifests
from ansible_collections.oceanid.fleet.plugins.module_utils.data_miner_config import config_errors, parse_range
from tests.unit.data_miner.seed import SECRETS, seed_config, seed_nodes


def errors_with(nodes=None, **changes):
    return config_errors(seed_config(**changes), seed_nodes() if nodes is None else nodes)


def workers_with(name, **spec):
    workers = seed_config()["workers"]
    workers[name] = {**workers.get(name, {}), **spec}
    return workers


def test_the_seed_configuration_is_valid():
    assert config_errors(seed_config(), seed_nodes()) == []


def test_an_unknown_worker_key_is_named_with_the_closest_known_key():
    errors = errors_with(workers=workers_with("download", replica=3))
    assert errors == ["workers.download: unknown key 'replica'; did you mean 'replicas'?"]


def test_an_unknown_top_level_key_is_named():
    config = seed_config()
    config["worker"] = {}
    assert config_errors(config, seed_nodes()) == ["config: unknown key 'worker'; did you mean 'workers'?"]


def test_an_unknown_reference_in_the_app_config_is_named_with_its_key():
    config = seed_config()
    config["app_config"]["k3s_app_overrides"]["output_dir"] = "${storage.seaweedfs}/out"
    (error,) = config_errors(config, seed_nodes())
    assert error.startswith("app_config.output_dir: unknown reference ${storage.seaweedfs}")


def test_a_preset_that_is_not_defined_is_named():
    errors = errors_with(workers=workers_with("extract", preset="large"))
    assert errors == [
        "workers.extract.preset: 'large' is not defined in resource_presets (defined: gpu, medium, small)"
    ]


def test_the_default_preset_of_a_gpu_worker_must_exist():
    presets = seed_config()["resource_presets"]
    del presets["gpu"]
    errors = errors_with(resource_presets=presets)
    assert errors == [
        f"workers.{name}.preset: 'gpu' is not defined in resource_presets (defined: medium, small)"
        for name in ("filter", "dedup", "detect")
    ]


def test_schedule_on_gpu_without_a_gpu_node_is_named():
    nodes = [dict(node, gpu=False) for node in seed_nodes()]
    errors = errors_with(nodes=nodes)
    assert len(errors) == 3
    assert errors[0].startswith("workers.filter.schedule_on: 'gpu' but no GPU node that is not storage_only")


def test_a_gpu_worker_scaled_to_zero_needs_no_gpu_node():
    nodes = [dict(node, gpu=False) for node in seed_nodes()]
    workers = seed_config()["workers"]
    for name in ("filter", "dedup", "detect"):
        workers[name]["replicas"] = 0
    assert errors_with(nodes=nodes, workers=workers) == []


def test_every_node_storage_only_leaves_no_eligible_node():
    nodes = [dict(node, storage_only=True) for node in seed_nodes()]
    errors = errors_with(nodes=nodes)
    assert (
        errors[0] == "nodes: no master node that is not storage_only (the infrastructure and master workers need one)"
    )
    # and each worker, named with its schedule_on
    assert sorted(error.split(":")[0] for error in errors[1:]) == [
        f"workers.{name}.schedule_on" for name in ("dedup", "detect", "download", "extract", "filter", "monitor")
    ]


def test_no_master_node_is_an_error():
    nodes = [dict(node, master=False) for node in seed_nodes()]
    errors = errors_with(nodes=nodes)
    assert errors == [
        "nodes: no master node that is not storage_only (the infrastructure and master workers need one)",
        "workers.extract.schedule_on: 'master' but no master node that is not storage_only is in the nodes "
        "(pavanjci, manthana, arsenal); set replicas to 0 or add one",
        "workers.monitor.schedule_on: 'master' but no master node that is not storage_only is in the nodes "
        "(pavanjci, manthana, arsenal); set replicas to 0 or add one",
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"kind": "DaemonSet"}, "workers.download.kind: 'DaemonSet' is not one of Deployment, StatefulSet"),
        ({"replicas": -1}, "workers.download.replicas: expected an integer >= 0, got -1"),
        ({"replicas": "3"}, "workers.download.replicas: expected an integer >= 0, got '3'"),
        ({"replicas": True}, "workers.download.replicas: expected an integer >= 0, got True"),
        ({"schedule_on": "worker"}, "workers.download.schedule_on: 'worker' is not one of all, master, gpu"),
        ({"hf_token": "yes"}, "workers.download.hf_token: expected true or false, got 'yes'"),
        ({"liveness_probe": "/tmp/healthy"}, "workers.download.liveness_probe: expected a Kubernetes probe mapping"),
        ({"command": "python -m x"}, "workers.download.command: expected a list of strings or null"),
        ({"env": {"HF_TOKEN": "x"}}, "workers.download.env.HF_TOKEN: set by the role; it cannot be overridden"),
        ({"env": {"1BAD": "x"}}, "workers.download.env: '1BAD' is not an environment variable name"),
    ],
)
def test_worker_values_are_checked(spec, expected):
    errors = errors_with(workers=workers_with("download", **spec))
    assert len(errors) == 1
    assert errors[0].startswith(expected)


def test_a_worker_name_must_be_a_dns_label():
    workers = seed_config()["workers"]
    workers["Bad_Name"] = {"replicas": 1}
    assert errors_with(workers=workers)[0].startswith("workers.Bad_Name: the worker name must be a lowercase DNS label")


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ({"cpu": "1000m-250m", "memory": "512Mi-2Gi"}, "resource_presets.small.cpu: '1000m-250m': the request 1000m"),
        ({"cpu": "250m-1000m", "memory": "4Gi-2Gi"}, "resource_presets.small.memory: '4Gi-2Gi': the request 4Gi"),
        ({"cpu": "lots", "memory": "512Mi-2Gi"}, "resource_presets.small.cpu: 'lots' is not a Kubernetes cpu quantity"),
        ({"cpu": "250m-1000m", "memory": "512MB-2Gi"}, "resource_presets.small.memory: '512MB' is not"),
        ({"cpu": "250m-1000m"}, "resource_presets.small.memory: missing"),
        ({"cpu": "250m-1000m", "memory": "1Gi", "gpu": 1}, "resource_presets.small: unknown key 'gpu'"),
    ],
)
def test_resource_presets_are_parsed(preset, expected):
    presets = seed_config()["resource_presets"]
    presets["small"] = preset
    errors = errors_with(resource_presets=presets)
    assert len(errors) == 1
    assert errors[0].startswith(expected)


def test_request_limit_ranges_parse_across_units():
    assert parse_range("250m-1000m", "cpu") == ("250m", "1000m")
    assert parse_range("0.5-2", "cpu") == ("0.5", "2")
    assert parse_range("1000Mi-1Gi", "memory") == ("1000Mi", "1Gi")
    assert parse_range("1G-1Gi", "memory") == ("1G", "1Gi")  # 10^9 <= 2^30
    assert parse_range("2Gi", "memory") == ("2Gi", "2Gi")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("persistence", "nfs", "persistence: 'nfs' is not one of hostPath, pvc"),
        ("gpu_sharing", "mig", "gpu_sharing: 'mig' is not one of runtime, device_plugin"),
        ("namespace", "Data_Miner", "namespace: 'Data_Miner' is not a Kubernetes namespace name"),
        ("kubernetes_version", "latest", "kubernetes_version: 'latest' is not a version"),
        ("labels", {"app.kubernetes.io/managed-by": "me"}, "labels.app.kubernetes.io/managed-by: set by the role"),
    ],
)
def test_top_level_values_are_checked(key, value, expected):
    errors = errors_with(**{key: value})
    assert len(errors) == 1
    assert errors[0].startswith(expected)


@pytest.mark.parametrize(
    ("service", "spec", "expected"),
    [
        ("grafana", {"node_port": 8080}, "infrastructure.grafana.node_port: expected 30000-32767, got 8080"),
        ("adminer", {"node_port": 30300}, "infrastructure.adminer.node_port: 30300 is also grafana's node_port"),
        ("postgres", {"kind": "ReplicaSet"}, "infrastructure.postgres.kind: 'ReplicaSet' is not one of"),
        ("loki", {"prot": 3100}, "infrastructure.loki: unknown key 'prot'; did you mean 'port'?"),
        ("postgres", {"port": 70000}, "infrastructure.postgres.port: expected a port 1-65535, got 70000"),
        ("redis", {"image": "redis"}, "infrastructure: unknown key 'redis'"),
    ],
)
def test_infrastructure_values_are_checked(service, spec, expected):
    infrastructure = seed_config()["infrastructure"]
    infrastructure[service] = {**infrastructure.get(service, {}), **spec}
    errors = errors_with(infrastructure=infrastructure)
    assert len(errors) == 1
    assert errors[0].startswith(expected)


def test_a_disabled_services_node_port_does_not_clash():
    infrastructure = seed_config()["infrastructure"]
    infrastructure["adminer"] = {"enabled": False, "node_port": 30300}
    assert errors_with(infrastructure=infrastructure) == []


def test_storage_paths_must_be_absolute():
    errors = errors_with(storage={"seaweedfs_mount": "swdfs", "db_path": "/"})
    assert errors == [
        "storage.seaweedfs_mount: expected an absolute path other than /, got 'swdfs'",
        "storage.db_path: expected an absolute path other than /, got '/'",
    ]


def test_pvc_persistence_needs_no_db_path():
    assert errors_with(persistence="pvc", storage={"seaweedfs_mount": "/swdfs_mnt/swshared"}) == []


def test_nodes_are_checked():
    nodes = seed_nodes() + [{"name": "pavanjci", "master": "yes", "gpus": 1}]
    errors = errors_with(nodes=nodes)
    assert errors == [
        "nodes[3]: unknown key 'gpus'; did you mean 'gpu'?",
        "nodes[3].name: node 'pavanjci' is listed twice",
        "nodes[3].master: expected true or false, got 'yes'",
    ]


def test_every_problem_is_reported_at_once():
    config = seed_config(persistence="nfs", gpu_sharing="mig")
    config["workers"]["download"]["replica"] = 3
    assert len(config_errors(config, seed_nodes())) == 3


def test_manifests_refuse_invalid_input_listing_every_problem():
    config = seed_config(gpu_sharing="mig")
    config["workers"]["extract"]["preset"] = "huge"
    with pytest.raises(DataMinerError) as caught:
        manifests(config, seed_nodes(), SECRETS)
    assert caught.value.errors == [
        "workers.extract.preset: 'huge' is not defined in resource_presets (defined: gpu, medium, small)",
        "gpu_sharing: 'mig' is not one of runtime, device_plugin",
    ]


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({**SECRETS, "postgres_password": "postgres"}, "secrets.postgres_password: expected a generated password"),
        ({**SECRETS, "grafana_admin_password": ""}, "secrets.grafana_admin_password: expected a generated password"),
        ({**SECRETS, "hf": "x"}, "secrets: unknown key 'hf'"),
    ],
)
def test_weak_or_missing_passwords_are_refused(secrets, expected):
    with pytest.raises(DataMinerError) as caught:
        manifests(seed_config(), seed_nodes(), secrets)
    assert caught.value.errors[0].startswith(expected)
    assert SECRETS["postgres_password"] not in str(caught.value)
