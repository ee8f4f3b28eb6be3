# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner stack's manifests, checked offline as the seaweedfs role's k8s mode is.

No Kubernetes API server is reachable here, so every manifest the oceanid.fleet.data_miner_manifests filter renders
for the seed's cluster (tests/unit/data_miner/seed_cluster_config.yaml) is written as YAML, read back, and validated
against the Kubernetes OpenAPI schema of the cluster's version (strict: unknown fields fail, as
`kubectl apply --validate=strict` would), for both persistence modes and both GPU sharing modes.
"""

from __future__ import annotations

import itertools

import pytest
import yaml

from ansible_collections.oceanid.fleet.plugins.filter.data_miner import data_miner_manifests
from tests.unit.data_miner.seed import SECRETS, seed_config, seed_nodes

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S_VERSION = seed_config()["kubernetes_version"]
MODES = list(itertools.product(("hostPath", "pvc"), ("runtime", "device_plugin")))


def render(**overrides):
    """The filter's output as the role writes it: YAML text per file, read back."""
    rendered = data_miner_manifests(seed_config(**overrides), seed_nodes(storage_only=["storage1"]), SECRETS)
    return [(item["path"], yaml.safe_load(yaml.safe_dump(item["manifest"]))) for item in rendered]


def validate(manifest):
    kubernetes_validate.validate(manifest, f"{K8S_VERSION}.0", strict=True)


def test_the_seed_is_for_kubernetes_1_31():
    assert K8S_VERSION == "1.31"


@pytest.mark.parametrize(("persistence", "gpu_sharing"), MODES)
def test_every_manifest_validates_strictly_against_the_kubernetes_schema(persistence, gpu_sharing):
    rendered = render(persistence=persistence, gpu_sharing=gpu_sharing, storage_class="local-path")
    kinds = {manifest["kind"] for _path, manifest in rendered}
    assert kinds >= {"Namespace", "ConfigMap", "Secret", "StatefulSet", "Deployment", "Service"}
    assert ("PersistentVolumeClaim" in kinds) == (persistence == "pvc")
    for path, manifest in rendered:
        try:
            validate(manifest)
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover - the message names the file
            pytest.fail(f"{path}: {exc}")


def test_the_other_kinds_probes_and_worker_options_validate_too():
    config = seed_config()
    config["infrastructure"]["postgres"]["kind"] = "Deployment"
    config["infrastructure"]["grafana"]["kind"] = "StatefulSet"
    config["infrastructure"]["adminer"] = {"kind": "StatefulSet", "preset": "small"}
    config["workers"]["monitor"].update(
        kind="StatefulSet",
        liveness_probe={"exec": {"command": ["test", "-f", "/tmp/healthy"]}, "periodSeconds": 30},
        command=["python", "-m", "data_miner.cli"],
        args=["monitor"],
        env={"LOG_LEVEL": "debug", "BATCH": 8, "DRY_RUN": False},
    )
    config["labels"] = {"team": "vision", "example.com/owner": "ml"}
    for item in data_miner_manifests(config, seed_nodes(), {**SECRETS, "hf_token": ""}):
        try:
            validate(yaml.safe_load(yaml.safe_dump(item["manifest"])))
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover
            pytest.fail(f"{item['path']}: {exc}")


def test_a_misspelt_field_would_be_caught():
    # The check is strict: the same manifest with one unknown field fails, so the passes above mean something.
    manifest = dict(render())["workers/filter-deployment.yaml"]
    manifest["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"exec": {"command": ["true"]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(manifest)


def test_the_configmap_files_are_yaml_the_workers_and_grafana_read():
    rendered = dict(render())
    config = yaml.safe_load(rendered["config/configmap.yaml"]["data"]["config.yaml"])
    assert config["blocked_hashtag_patterns"] == ""
    assert config["output_dir"] == "/swdfs_mnt/swshared/data_miner_output"
    provisioning = rendered["infrastructure/grafana-datasources-configmap.yaml"]["data"]["datasources.yaml"]
    assert "url: http://loki.data-miner.svc.cluster.local:3100" in provisioning
    assert yaml.safe_load(provisioning)["apiVersion"] == 1
