# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The seaweedfs role's filters: layouts, command lines, health checks, S3 identities, the Kubernetes layout."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.filter import seaweedfs
from ansible_collections.oceanid.fleet.plugins.filter.seaweedfs import FilterModule

SETTINGS = {
    "weed": "/opt/seaweedfs/venv/bin/weed",
    "address": "10.0.0.1",
    "bind": "10.0.0.1",
    "masters": "10.0.0.1:9333.19333",
    "master_count": 1,
    "filers": "10.0.0.1:8888.18888",
    "master_url": "http://10.0.0.1:9333",
    "master_port": 9333,
    "master_grpc_port": 19333,
    "master_dir": "/data/seaweed/master",
    "master_extra_args": [],
    "volume_size_limit_mb": 1000,
    "default_replication": "000",
    "volume_node": "10.0.0.1:8080",
    "volume_port": 8080,
    "volume_grpc_port": 18080,
    "volume_dir": "/data/seaweed/volume",
    "volume_max": 50,
    "volume_min_free_space": 1,
    "volume_pre_stop_seconds": 10,
    "volume_extra_args": [],
    "data_center": "",
    "rack": "",
    "filer_port": 8888,
    "filer_grpc_port": 18888,
    "filer_extra_args": [],
    "s3_port": 8333,
    "s3_config": "/etc/seaweedfs/s3.json",
    "s3_anonymous_actions": [],
    "s3_extra_args": [],
    "mount_dir": "/swdfs_mnt/swshared",
    "mount_filer_path": "/",
    "mount_cache_dir": "/var/cache/seaweedfs",
    "mount_cache_capacity_mb": 1000,
    "mount_extra_args": [],
}


def test_every_filter_is_registered():
    assert set(FilterModule().filters()) == {
        "seaweedfs_arch",
        "seaweedfs_components",
        "seaweedfs_commands",
        "seaweedfs_health_checks",
        "seaweedfs_s3_identities",
        "seaweedfs_s3_invalid_identities",
        "seaweedfs_k8s_node_names",
        "seaweedfs_k8s_storage_only_nodes",
        "seaweedfs_k8s_volume_nodes",
        "seaweedfs_k8s_manifests",
        "seaweedfs_k8s_master_peers",
    }


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        ("x86_64", "amd64"),
        ("aarch64", "arm64"),
        ("armv7l", "arm"),
        ("armv6l", "arm"),
        ("riscv64", "riscv64"),
        ("", "amd64"),
    ],
)
def test_arch(fact, expected):
    assert seaweedfs.seaweedfs_arch(fact) == expected


@pytest.mark.parametrize(
    ("host", "mount", "expected"),
    [
        ("a", True, ["master", "volume", "filer", "s3", "mount"]),
        ("b", True, ["volume", "mount"]),
        ("b", "false", ["volume"]),
        ("c", "yes", ["mount"]),
        ("c", False, []),
    ],
)
def test_components_follow_the_groups_in_start_order(host, mount, expected):
    layout = {"masters": ["a"], "volumes": ["b", "a"], "filers": ["a"], "s3": ["a"]}
    assert seaweedfs.seaweedfs_components(host, mount=mount, **layout) == expected


@pytest.mark.parametrize(
    ("component", "overrides", "expected_tail"),
    [
        (
            "master",
            {},
            [
                "-port=9333",
                "-port.grpc=19333",
                "-mdir=/data/seaweed/master",
                "-peers=none",
                "-volumeSizeLimitMB=1000",
                "-defaultReplication=000",
                "-telemetry=false",
            ],
        ),
        (
            "master",
            {"master_count": "3", "masters": "m1:9333.19333,m2:9333.19333,m3:9333.19333", "master_extra_args": ["-x"]},
            [
                "-port=9333",
                "-port.grpc=19333",
                "-mdir=/data/seaweed/master",
                "-peers=m1:9333.19333,m2:9333.19333,m3:9333.19333",
                "-volumeSizeLimitMB=1000",
                "-defaultReplication=000",
                "-telemetry=false",
                "-x",
            ],
        ),
        (
            "volume",
            {"data_center": "dc1", "rack": "r1"},
            [
                "-port=8080",
                "-port.grpc=18080",
                "-dir=/data/seaweed/volume",
                "-max=50",
                "-master=10.0.0.1:9333.19333",
                "-minFreeSpace=1",
                "-preStopSeconds=10",
                "-dataCenter=dc1",
                "-rack=r1",
            ],
        ),
        ("filer", {"rack": "r1"}, ["-port=8888", "-port.grpc=18888", "-master=10.0.0.1:9333.19333", "-rack=r1"]),
    ],
)
def test_server_command_lines(component, overrides, expected_tail):
    command = seaweedfs.seaweedfs_commands([component], {**SETTINGS, **overrides})[component]
    assert command[:4] == [SETTINGS["weed"], component, "-ip=10.0.0.1", "-ip.bind=10.0.0.1"]
    assert command[4:] == expected_tail


def test_s3_and_mount_command_lines():
    commands = seaweedfs.seaweedfs_commands(["s3", "mount"], {**SETTINGS, "data_center": "dc1", "rack": "r1"})
    assert commands["s3"] == [
        SETTINGS["weed"],
        "s3",
        "-ip.bind=10.0.0.1",
        "-port=8333",
        "-filer=10.0.0.1:8888.18888",
        "-config=/etc/seaweedfs/s3.json",
    ]
    # the mount takes the data center (to read nearby) but no rack
    assert commands["mount"] == [
        SETTINGS["weed"],
        "mount",
        "-filer=10.0.0.1:8888.18888",
        "-dir=/swdfs_mnt/swshared",
        "-filer.path=/",
        "-allowOthers=true",
        "-cacheDir=/var/cache/seaweedfs",
        "-cacheCapacityMB=1000",
        "-dataCenter=dc1",
    ]


@pytest.mark.parametrize(
    ("function", "components", "settings", "message"),
    [
        (seaweedfs.seaweedfs_commands, ["gateway"], SETTINGS, "unknown seaweedfs component 'gateway'"),
        (seaweedfs.seaweedfs_commands, ["volume"], {"weed": "w", "address": "a", "bind": "b"}, "have no 'volume_port'"),
        (seaweedfs.seaweedfs_commands, ["master"], {}, "have no 'weed'"),
        (seaweedfs.seaweedfs_health_checks, ["filer"], {"address": "a"}, "have no 'filer_port'"),
        (seaweedfs.seaweedfs_health_checks, ["nfs"], {"address": "a"}, "unknown seaweedfs component 'nfs'"),
    ],
)
def test_bad_input_fails_naming_what_is_missing(function, components, settings, message):
    with pytest.raises(AnsibleFilterError, match=message):
        function(components, settings)


@pytest.mark.parametrize(
    ("anonymous", "s3_tail"),
    [([], ["--s3-anonymous-denied"]), (["Read"], [])],
)
def test_health_checks(anonymous, s3_tail):
    checks = seaweedfs.seaweedfs_health_checks(
        ["master", "volume", "filer", "s3", "mount"], {**SETTINGS, "s3_anonymous_actions": anonymous}
    )
    assert checks == {
        "master": ["--check", "http://10.0.0.1:9333/cluster/status", "--require", "Leader"],
        "volume": [
            "--check",
            "http://10.0.0.1:8080/status",
            "--check",
            "http://10.0.0.1:9333/dir/status",
            "--contains",
            '"Url":"10.0.0.1:8080"',
        ],
        "filer": ["--check", "http://10.0.0.1:8888/healthz"],
        "s3": ["--s3", "http://10.0.0.1:8333", "--s3-config", "/etc/seaweedfs/s3.json", *s3_tail],
        "mount": ["--mount", "/swdfs_mnt/swshared"],
    }


IDENTITY = {"name": "models", "access_key": "AK", "secret_key": "SK", "actions": ["Admin"]}


@pytest.mark.parametrize(
    ("anonymous", "expected_names"),
    [([], ["models"]), (["Read", "List"], ["anonymous", "models"])],
)
def test_s3_identities(anonymous, expected_names):
    identities = seaweedfs.seaweedfs_s3_identities([IDENTITY], anonymous)
    assert [identity["name"] for identity in identities] == expected_names
    assert identities[-1] == {
        "name": "models",
        "credentials": [{"accessKey": "AK", "secretKey": "SK"}],
        "actions": ["Admin"],
    }
    if anonymous:
        assert identities[0] == {"name": "anonymous", "actions": anonymous}


PATTERN = "^(Admin|Read|List|Tagging|Write)(:[A-Za-z0-9._*-]+)?$"


@pytest.mark.parametrize(
    ("identities", "bad"),
    [
        ([IDENTITY, {**IDENTITY, "name": "bucket", "actions": ["Read:models", "Write:models"]}], []),
        ([{**IDENTITY, "secret_key": ""}], ["models"]),
        ([{"name": "nosecret", "access_key": "AK", "actions": ["Read"]}], ["nosecret"]),
        ([{**IDENTITY, "actions": "Admin"}], ["models"]),
        ([{**IDENTITY, "actions": []}], ["models"]),
        ([{**IDENTITY, "actions": ["Delete"]}], ["models"]),
        ([IDENTITY, "not-a-mapping", {"access_key": "AK", "secret_key": "SK", "actions": ["Read"]}], ["#2", "#3"]),
    ],
    ids=["good", "empty-secret", "no-secret", "actions-string", "no-actions", "unknown-action", "by-position"],
)
def test_invalid_identities_are_named_never_shown(identities, bad):
    assert seaweedfs.seaweedfs_s3_invalid_identities(identities, PATTERN) == bad


HOSTVARS = {
    "node1": {"seaweedfs_disk_limit_mb": 50000, "seaweedfs_k8s_node_name": "gpu-node-1"},
    "node2": {"seaweedfs_disk_limit_mb": "2999", "seaweedfs_rack": "r2", "seaweedfs_storage_only": "yes"},
    "node3": {},
}


def test_k8s_volume_nodes_take_host_values_else_defaults():
    nodes = seaweedfs.seaweedfs_k8s_volume_nodes(
        ["node1", "node2", "node3"], HOSTVARS, 1000, default_disk_limit_mb=0, data_center="dc", rack=""
    )
    assert nodes == [
        {"host": "node1", "node": "gpu-node-1", "disk_limit_mb": 50000, "max": 50, "data_center": "dc", "rack": ""},
        {"host": "node2", "node": "node2", "disk_limit_mb": 2999, "max": 2, "data_center": "dc", "rack": "r2"},
        {"host": "node3", "node": "node3", "disk_limit_mb": 0, "max": 0, "data_center": "dc", "rack": ""},
    ]


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (seaweedfs.seaweedfs_k8s_node_names, ["gpu-node-1", "node2", "node3"]),
        (seaweedfs.seaweedfs_k8s_storage_only_nodes, ["node2"]),
    ],
)
def test_k8s_node_names(function, expected):
    assert function(["node1", "node2", "node3"], HOSTVARS) == expected


def test_k8s_manifests_one_volume_statefulset_per_node_in_apply_order():
    files = seaweedfs.seaweedfs_k8s_manifests([{"node": "n1"}, {"node": "n2"}])
    assert [entry["file"] for entry in files] == [
        "namespace.yaml",
        "config-secret.yaml",
        "master-service.yaml",
        "master-statefulset.yaml",
        "volume-service.yaml",
        "volume-n1-statefulset.yaml",
        "volume-n2-statefulset.yaml",
        "filer-service.yaml",
        "filer-statefulset.yaml",
        "mount-daemonset.yaml",
    ]
    assert [entry for entry in files if entry.get("secret")] == [
        {"file": "config-secret.yaml", "template": "config-secret.yaml.j2", "secret": True}
    ]
    assert files[5] == {
        "file": "volume-n1-statefulset.yaml",
        "template": "volume-statefulset.yaml.j2",
        "node": {"node": "n1"},
    }


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "master-0.master.sw.svc.cluster.local:9333"),
        ("3", ",".join(f"master-{i}.master.sw.svc.cluster.local:9333" for i in range(3))),
        (0, ""),
    ],
)
def test_k8s_master_peers(count, expected):
    assert seaweedfs.seaweedfs_k8s_master_peers(count, "sw", 9333) == expected
