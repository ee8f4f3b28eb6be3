# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner application config (module_utils/data_miner.py app_config): the seed's three-layer merge
(default.yaml, run config, cluster_config.k3s_app_overrides) and its ${a.b} references."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.data_miner_app_config import (
    DataMinerError,
    app_config,
    deep_merge,
)
from tests.unit.data_miner.seed import seed_config

CONTEXT = seed_config()


def test_the_seeds_three_layers_merge_with_the_k3s_overrides_winning():
    merged = app_config(
        {"output_dir": "./output", "device": "cpu", "filter": {"threshold": 0.3, "batch": 8}},
        {"project": "glass_door", "filter": {"threshold": 0.5}},
        CONTEXT["app_config"]["k3s_app_overrides"],
        CONTEXT,
    )
    assert merged == {
        "output_dir": "/swdfs_mnt/swshared/data_miner_output",
        "device": "auto",
        "filter": {"threshold": 0.5, "batch": 8},
        "project": "glass_door",
    }


def test_an_empty_string_in_the_run_config_stays_an_empty_string():
    # The seed's trap: blocked_hashtag_patterns: '' became Path('.') ("Is a directory: '.'").
    merged = app_config({"blocked_hashtag_patterns": "hashtags.txt"}, {"blocked_hashtag_patterns": ""}, {}, CONTEXT)
    assert merged["blocked_hashtag_patterns"] == ""
    assert merged["blocked_hashtag_patterns"] is not None


def test_false_zero_and_null_in_a_later_layer_replace_the_earlier_value():
    merged = deep_merge({"a": True, "b": 5, "c": "x", "d": {"e": 1}}, {"a": False, "b": 0, "c": None, "d": None})
    assert merged == {"a": False, "b": 0, "c": None, "d": None}


def test_lists_are_replaced_not_appended():
    assert deep_merge({"queries": ["a", "b"]}, {"queries": ["c"]}) == {"queries": ["c"]}


def test_the_layers_given_are_not_modified():
    defaults = {"filter": {"threshold": 0.3}, "path": "${storage.db_path}"}
    before = copy.deepcopy(defaults)
    app_config(defaults, {"filter": {"threshold": 0.9}}, {}, CONTEXT)
    assert defaults == before


def test_a_whole_string_reference_keeps_the_referenced_type():
    context = {"limits": {"replicas": 3, "gpu": True, "ratio": 0.5, "tags": ["a", "b"], "db": {"port": 5432}}}
    merged = app_config(
        {
            "replicas": "${limits.replicas}",
            "gpu": "${limits.gpu}",
            "ratio": "${ limits.ratio }",
            "tags": "${limits.tags}",
            "db": "${limits.db}",
        },
        {},
        {},
        context,
    )
    assert merged == {"replicas": 3, "gpu": True, "ratio": 0.5, "tags": ["a", "b"], "db": {"port": 5432}}


def test_an_embedded_reference_is_formatted_into_the_string():
    context = {"n": 3, "flag": False, "name": "x"}
    merged = app_config({"text": "${name}-${n}-${flag}", "escaped": "$${name} costs $5"}, {}, {}, context)
    assert merged == {"text": "x-3-false", "escaped": "${name} costs $5"}


def test_references_inside_lists_and_nested_mappings_are_resolved():
    merged = app_config({"dirs": ["${storage.seaweedfs_mount}/a", {"b": "${storage.db_path}"}]}, {}, {}, CONTEXT)
    assert merged == {"dirs": ["/swdfs_mnt/swshared/a", {"b": "/data/data_miner_db"}]}


def test_a_reference_to_an_empty_string_stays_empty():
    assert app_config({"x": "${a}", "y": "p${a}q"}, {}, {}, {"a": ""}) == {"x": "", "y": "pq"}


def test_references_in_the_context_are_followed():
    context = {"base": "/mnt", "out": "${base}/out", "deep": "${out}/deeper"}
    assert app_config({"dir": "${deep}"}, {}, {}, context) == {"dir": "/mnt/out/deeper"}


def test_an_unknown_reference_fails_naming_it_and_the_key_that_holds_it():
    with pytest.raises(DataMinerError) as caught:
        app_config({}, {"paths": {"output": "${storage.seaweedfs_mnt}/out"}}, {}, CONTEXT)
    message = str(caught.value)
    assert "app_config.paths.output" in message
    assert "${storage.seaweedfs_mnt}" in message
    assert "seaweedfs_mount" in message  # the keys that do exist


def test_a_reference_cycle_fails_clearly():
    context = {"a": "${b}", "b": "x${a}"}
    with pytest.raises(DataMinerError, match=r"app_config.v: reference cycle \$\{a\} -> \$\{b\} -> \$\{a\}"):
        app_config({"v": "${a}"}, {}, {}, context)


def test_a_self_reference_fails_clearly():
    with pytest.raises(DataMinerError, match="reference cycle"):
        app_config({"v": "${x}"}, {}, {}, {"x": "${x}"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a ${m} b", "is a dict and cannot be written into a string"), ("a ${z} b", "is null")],
)
def test_a_mapping_or_null_cannot_be_embedded_in_a_string(value, expected):
    with pytest.raises(DataMinerError, match=expected):
        app_config({"v": value}, {}, {}, {"m": {"k": 1}, "z": None})


def test_an_empty_reference_fails():
    with pytest.raises(DataMinerError, match=r"app_config.v: empty reference"):
        app_config({"v": "${}"}, {}, {}, {})


def test_a_layer_that_is_not_a_mapping_fails():
    with pytest.raises(DataMinerError, match="every layer must be a mapping"):
        app_config({}, ["not", "a", "mapping"], {}, {})


def test_missing_layers_are_empty():
    assert app_config(None, None, None, None) == {}


def test_a_list_item_is_referenced_by_its_index():
    context = {"queries": ["glass door", "shower"]}
    assert app_config({"first": "${queries.0}", "second": "q=${queries.1}"}, {}, {}, context) == {
        "first": "glass door",
        "second": "q=shower",
    }
    with pytest.raises(DataMinerError, match=r"unknown reference \$\{queries.2\}"):
        app_config({"third": "${queries.2}"}, {}, {}, context)
