# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The device plugin's config file (module_utils/nvidia_device_plugin.py): built from the role's options and checked
with the plugin's own rules (specs/nvidia-k8s.json device_plugin.config_file, k8s-device-plugin v0.20.0)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.nvidia_device_plugin import (
    advertised_resources,
    build_config,
    config_errors,
)

TIME_SLICED = build_config(time_slicing_replicas=4, rename_by_default=True)


def test_the_default_config_is_valid_and_shares_nothing():
    config = build_config()
    assert config == {
        "version": "v1",
        "flags": {
            "migStrategy": "none",
            "failOnInitError": True,
            "plugin": {"deviceListStrategy": "envvar", "deviceIDStrategy": "uuid"},
        },
    }
    assert config_errors(config) == []
    assert advertised_resources(config) == ["nvidia.com/gpu"]


def test_time_slicing_with_rename_by_default_advertises_the_shared_resource():
    assert config_errors(TIME_SLICED) == []
    assert TIME_SLICED["sharing"]["timeSlicing"] == {
        "renameByDefault": True,
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
    }
    assert advertised_resources(TIME_SLICED) == ["nvidia.com/gpu.shared"]


@pytest.mark.parametrize("strategy", ["none", "single", "mixed"])
def test_each_mig_strategy_is_accepted(strategy):
    assert config_errors(build_config(mig_strategy=strategy, time_slicing_replicas=2)) == []


def mutate(path, value):
    config = copy.deepcopy(TIME_SLICED)
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("version",), "v2", "unknown version: v2"),
        (("flags", "migStrategy"), "all", "flags.migStrategy is 'all', expected one of none, single, mixed"),
        (("flags", "failOnInitError"), "yes", "flags.failOnInitError must be true or false"),
        (("flags", "plugin", "deviceListStrategy"), ["envvar", "bogus"], "invalid --device-list-strategy option bogus"),
        (("flags", "plugin", "deviceIDStrategy"), "serial", "deviceIDStrategy is 'serial'"),
        (("sharing", "timeSlicing", "resources"), [], "no resources specified"),
        (("sharing", "timeSlicing", "resources"), [{"name": "nvidia.com/gpu", "replicas": 1}], "replicas must be >= 2"),
        (("sharing", "timeSlicing", "resources"), [{"name": "Bad_Name", "replicas": 2}], "DNS subdomain"),
        (("sharing", "timeSlicing", "renamebydefault"), True, "renamebydefault is not a field"),
        (("imex",), {"channelIDs": [1]}, "channelIDs must be [] or [0]"),
        (("sharing", "mps"), {"resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}, "requires --mps-root"),
    ],
)
def test_what_the_plugin_refuses_is_reported(path, value, message):
    errors = config_errors(mutate(path, value))
    assert any(message in error for error in errors), errors


def test_mps_with_mixed_mig_is_refused():
    config = build_config(mig_strategy="mixed", extra_flags={"mpsRoot": "/run/nvidia/mps"})
    config["sharing"] = {"mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}}
    assert config_errors(config) == ["using --mig-strategy=mixed is not supported with MPS"]


def test_a_resource_name_without_prefix_gets_nvidia_com():
    config = build_config(time_slicing_replicas=3, time_slicing_resources=("mig-1g.5gb",), mig_strategy="mixed")
    assert config_errors(config) == []
    assert advertised_resources(config) == ["nvidia.com/mig-1g.5gb"]
