# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The k3s data-miner seed's cluster (seed_cluster_config.yaml) as the data_miner engine takes it, and helpers that
read rendered manifests: which nodes a pod's nodeAffinity allows, a manifest by path."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

SEED_FILE = Path(__file__).with_name("seed_cluster_config.yaml")
SEED = yaml.safe_load(SEED_FILE.read_text(encoding="utf-8"))
# The seed's "Current Pod Distribution" table.
POD_DISTRIBUTION = SEED["pod_distribution"]
# Passwords the role would generate (never postgres/postgres).
SECRETS = {
    "postgres_password": "kX9v2Lq7Rt4mWz8a",
    "grafana_admin_password": "Pq3nV8sY6cJf1hTe",
    "hf_token": "hf_seedtokenforthetests",
}


def seed_nodes(storage_only=()):
    """The node list the role builds from the inventory: master and GPU flags, disk limits; ``storage_only``
    adds storage-only nodes (the seed's template `storage1`)."""
    nodes = [
        {
            "name": name,
            "master": spec["role"] == "master",
            "gpu": bool(spec.get("gpu", False)),
            "storage_only": bool(spec.get("storage_only", False)),
            "disk_limit_mb": spec["disk_limit_mb"],
        }
        for name, spec in SEED["cluster"]["nodes"].items()
    ]
    for name in storage_only:
        nodes.append({"name": name, "master": False, "gpu": False, "storage_only": True, "disk_limit_mb": 500000})
    return nodes


def seed_config(**overrides):
    """The config the role builds from its variables for the seed's cluster_config.yaml."""
    config = {
        "namespace": SEED["cluster"]["namespace"],
        "storage": copy.deepcopy(SEED["storage"]),
        "image": copy.deepcopy(SEED["image"]),
        "resource_presets": copy.deepcopy(SEED["resource_presets"]),
        "workers": copy.deepcopy(SEED["workers"]),
        "infrastructure": copy.deepcopy(SEED["infrastructure"]),
        "persistence": "hostPath",
        "storage_class": "",
        "gpu_sharing": "runtime",
        "app_config": {
            "defaults": {"output_dir": "./output", "device": "cpu", "blocked_hashtag_patterns": "hashtags.txt"},
            "run_config": {"project": "glass_door", "blocked_hashtag_patterns": ""},
            "k3s_app_overrides": copy.deepcopy(SEED["k3s_app_overrides"]),
        },
        "kubernetes_version": SEED["cluster"]["k3s_version"].lstrip("v").rsplit(".", 1)[0].split("+")[0],
        "labels": {},
    }
    config.update(overrides)
    return config


def by_path(rendered):
    return {item["path"]: item["manifest"] for item in rendered}


def pod_spec(manifest):
    return manifest["spec"]["template"]["spec"]


def allowed_nodes(manifest, nodes):
    """The node names a workload's pods may be scheduled on: its required nodeAffinity on kubernetes.io/hostname
    evaluated as the scheduler does (terms ORed, expressions ANDed; In, NotIn, Exists, DoesNotExist)."""
    names = [node["name"] for node in nodes]
    affinity = pod_spec(manifest).get("affinity", {}).get("nodeAffinity", {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return set(names)
    allowed = set()
    for term in required["nodeSelectorTerms"]:
        for name in names:
            labels = {"kubernetes.io/hostname": name}
            if all(_matches(expression, labels) for expression in term.get("matchExpressions", [])):
                allowed.add(name)
    return allowed


def _matches(expression, labels):
    key, operator = expression["key"], expression["operator"]
    if operator == "In":
        return labels.get(key) in expression["values"]
    if operator == "NotIn":
        return labels.get(key) not in expression["values"]
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise AssertionError(f"operator {operator} is not evaluated by this test helper")
