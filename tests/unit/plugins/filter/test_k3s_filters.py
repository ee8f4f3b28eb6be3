# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The k3s filters: config checks with the host named, the file format, and the node label/taint reconciliation
(only what the role manages is touched, tracked by annotations). No API server is involved: the Node objects
are what `kubernetes.core.k8s_info` returns."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.filter import k3s

LABELS = k3s.MANAGED_LABELS
TAINTS = k3s.MANAGED_TAINTS


def test_config_errors_name_the_host_and_the_variable():
    assert k3s.k3s_config_errors({"tls-sans": []}, "server", where="k3s_server_config", host="k3s-s1") == [
        "k3s-s1: k3s_server_config: key tls-sans is not a flag of `k3s server` (closest known flag: tls-san)"
    ]
    with pytest.raises(AnsibleFilterError, match="expected server or agent"):
        k3s.k3s_config_errors({}, "etcd")


def test_config_yaml():
    assert k3s.k3s_config_yaml({"a": "0644"}, header="# h") == '# h\na: "0644"\n'
    with pytest.raises(AnsibleFilterError):
        k3s.k3s_config_yaml(["a"])


def node(labels=None, annotations=None, taints=None):
    return {
        "metadata": {"name": "n1", "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"taints": taints} if taints is not None else {},
    }


def test_a_new_node_gets_the_labels_taints_and_the_annotations():
    change = k3s.k3s_node_patch(node({"kubernetes.io/hostname": "n1"}), {"gpu": "true"}, ["gpu=yes:NoSchedule"])
    assert change["changed"] and change["add"] == {"gpu": "true"} and change["remove"] == []
    assert change["patch"] == {
        "metadata": {
            "labels": {"gpu": "true"},
            "annotations": {LABELS: '["gpu"]', TAINTS: '["gpu:NoSchedule"]'},
        },
        "spec": {"taints": [{"key": "gpu", "effect": "NoSchedule", "value": "yes"}]},
    }


def test_a_reconciled_node_needs_nothing():
    current = node(
        {"gpu": "true", "kubernetes.io/hostname": "n1"},
        {LABELS: '["gpu"]', TAINTS: '["gpu:NoSchedule"]'},
        [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}],
    )
    change = k3s.k3s_node_patch(current, {"gpu": "true"}, ["gpu=yes:NoSchedule"])
    assert not change["changed"] and change["patch"] == {"metadata": {}}


def test_only_managed_labels_are_removed_and_others_stay():
    # "team" was set by someone else; "old" was ours and is no longer asked for; "gpu" changes value.
    current = node({"gpu": "false", "old": "1", "team": "ml"}, {LABELS: '["gpu", "old"]'})
    change = k3s.k3s_node_patch(current, {"gpu": "true"}, [])
    assert change["add"] == {"gpu": "true"} and change["remove"] == ["old"]
    assert change["patch"]["metadata"]["labels"] == {"gpu": "true", "old": None}  # null removes in a merge patch
    assert "team" not in change["patch"]["metadata"]["labels"]


def test_a_label_flag_changed_after_registration_is_applied():
    # The pain: k3s applies node-label only at registration; the role patches the changed value.
    current = node({"zone": "a"}, {LABELS: '["zone"]', TAINTS: "[]"})
    assert k3s.k3s_node_patch(current, {"zone": "b"}, [])["patch"]["metadata"] == {"labels": {"zone": "b"}}


def test_taints_others_set_are_kept_and_managed_ones_dropped():
    current = node(
        annotations={TAINTS: '["old:NoExecute"]', LABELS: "[]"},
        taints=[
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": None},
            {"key": "old", "effect": "NoExecute"},
        ],
    )
    change = k3s.k3s_node_patch(current, {}, ["new:PreferNoSchedule"])
    assert change["taints"] == [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": None},
        {"key": "new", "effect": "PreferNoSchedule"},
    ]
    assert json.loads(change["patch"]["metadata"]["annotations"][TAINTS]) == ["new:PreferNoSchedule"]


def test_a_broken_annotation_is_read_as_nothing_managed():
    change = k3s.k3s_node_patch(node({"x": "1"}, {LABELS: "{not json"}), {}, [])
    assert change["remove"] == [] and change["changed"]  # the annotation is rewritten


@pytest.mark.parametrize("taint", ["novalue", "a=b:Sometimes", 5])
def test_bad_taints(taint):
    with pytest.raises(AnsibleFilterError, match="taint"):
        k3s.k3s_node_patch({}, {}, [taint])


def test_the_filters_are_registered():
    assert set(k3s.FilterModule().filters()) == {"k3s_config_errors", "k3s_config_yaml", "k3s_node_patch"}
