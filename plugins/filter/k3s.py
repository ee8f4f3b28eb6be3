# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the k3s role: config.yaml checked against k3s's flags and written in the role's format
(plugins/module_utils/k3s_config.py, k3s_flags.py), and the node label/taint reconciliation (which labels and taints
to add, change or remove: only the ones the role manages, tracked by an annotation on the Node). Each filter's
documentation is in plugins/filter/<filter name>.yml."""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.module_utils import k3s_config, k3s_flags

MANAGED_LABELS = "oceanid.fleet/k3s-managed-labels"
MANAGED_TAINTS = "oceanid.fleet/k3s-managed-taints"


def k3s_config_errors(config, command, reserved=None, where="config.yaml", host=None):
    """Every reason ``k3s <command>`` would refuse or misread ``config``; each prefixed with ``host: ``."""
    if command not in k3s_config.COMMANDS:
        raise AnsibleFilterError(f"k3s_config_errors: command is {command!r}; expected server or agent")
    errors = k3s_config.config_errors(config, command, k3s_flags.FLAGS, k3s_flags.CHOICES, reserved or {}, where)
    return [f"{host}: {error}" for error in errors] if host else errors


def k3s_config_yaml(config, header=""):
    """config.yaml text in the role's format (strings quoted, keys in the given order)."""
    if not isinstance(config, dict):
        raise AnsibleFilterError("k3s_config_yaml: expected a mapping")
    return k3s_config.dump(config, header)


def parse_taint(text):
    """``key[=value]:Effect`` (k3s's node-taint form) -> {key, value?, effect}."""
    if not isinstance(text, str) or ":" not in text:
        raise AnsibleFilterError(f"taint {text!r} is not key[=value]:Effect")
    head, effect = text.rsplit(":", 1)
    if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise AnsibleFilterError(f"taint {text!r}: effect {effect!r} is not NoSchedule, PreferNoSchedule or NoExecute")
    key, _sep, value = head.partition("=")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def _managed(annotations, name):
    try:
        value = json.loads((annotations or {}).get(name) or "[]")
    except ValueError:
        return []
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def k3s_node_patch(node, labels, taints):
    """What to change on a Node so that it carries ``labels`` (dict) and ``taints`` (node-taint strings).

    Only labels and taints the role manages are touched: those it set before (listed in the Node's annotations
    MANAGED_LABELS / MANAGED_TAINTS) and the ones asked now. Returns {changed, patch (a JSON merge patch: a label
    set to null is removed; spec.taints is the whole new list), add, remove, taints}.
    """
    metadata = (node or {}).get("metadata") or {}
    current = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    labels = {str(key): str(value) for key, value in (labels or {}).items()}
    wanted_taints = [parse_taint(text) for text in (taints or [])]
    wanted_ids = [f"{t['key']}:{t['effect']}" for t in wanted_taints]

    was_labels = _managed(annotations, MANAGED_LABELS)
    add = {key: value for key, value in labels.items() if current.get(key) != value}
    remove = sorted(key for key in was_labels if key not in labels and key in current)

    was_taints = set(_managed(annotations, MANAGED_TAINTS))
    current_taints = ((node or {}).get("spec") or {}).get("taints") or []
    kept = [
        taint
        for taint in current_taints
        if f"{taint.get('key')}:{taint.get('effect')}" not in (was_taints | set(wanted_ids))
    ]
    new_taints = kept + wanted_taints

    def _ids(items):
        return sorted(
            json.dumps({k: v for k, v in item.items() if k in ("key", "value", "effect")}, sort_keys=True)
            for item in items
        )

    taints_changed = _ids(current_taints) != _ids(new_taints)

    managed = {MANAGED_LABELS: json.dumps(sorted(labels)), MANAGED_TAINTS: json.dumps(sorted(wanted_ids))}
    annotations_changed = any(annotations.get(key) != value for key, value in managed.items())

    patch = {"metadata": {}}
    if add or remove:
        patch["metadata"]["labels"] = {**add, **dict.fromkeys(remove)}
    if annotations_changed:
        patch["metadata"]["annotations"] = managed
    if taints_changed:
        patch["spec"] = {"taints": new_taints}
    return {
        "changed": bool(add or remove or taints_changed or annotations_changed),
        "patch": patch,
        "add": add,
        "remove": remove,
        "taints": new_taints,
    }


class FilterModule:
    """oceanid.fleet k3s filters."""

    def filters(self):
        return {
            "k3s_config_errors": k3s_config_errors,
            "k3s_config_yaml": k3s_config_yaml,
            "k3s_node_patch": k3s_node_patch,
        }
