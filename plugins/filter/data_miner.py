# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the data_miner role: the configuration's problems, the merged application config and the stack's
Kubernetes manifests. The logic is in plugins/module_utils/data_miner.py (manifests), data_miner_config.py (checks,
scheduling) and data_miner_app_config.py (merge, references). Each filter's documentation is in
plugins/filter/<filter name>.yml."""

from __future__ import annotations

import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.module_utils import data_miner


def _dump(value):
    """The text of a ConfigMap file: block YAML in the order given."""
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


def _plain(value):
    """Ansible's lazy and tagged values (subclasses of dict, list, str, int, float) as the plain types the engine
    and YAML's safe dumper expect."""
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    for plain in (str, bool, int, float):
        if isinstance(value, plain):
            return plain(value)
    return value


def data_miner_config_errors(config, nodes):
    """Every problem of the configuration and the node list, one line each naming the field; empty when sound."""
    return data_miner.config_errors(_plain(config), _plain(nodes))


def data_miner_app_config(defaults, run_config=None, overrides=None, context=None):
    """The three-layer application config (defaults, run config, k3s overrides) with ${a.b} references resolved."""
    try:
        return data_miner.app_config(_plain(defaults), _plain(run_config), _plain(overrides), _plain(context or {}))
    except data_miner.DataMinerError as exc:
        raise AnsibleFilterError("data_miner_app_config: %s" % exc)


def data_miner_manifests(config, nodes, secrets):
    """The stack's manifests in apply order: [{path, manifest}]; every problem of the input in one error."""
    try:
        return data_miner.manifests(_plain(config), _plain(nodes), _plain(secrets), dump=_dump)
    except data_miner.DataMinerError as exc:
        raise AnsibleFilterError("data_miner_manifests: the data_miner configuration is invalid:\n%s" % exc)


class FilterModule:
    """oceanid.fleet data_miner filters."""

    def filters(self):
        return {
            "data_miner_app_config": data_miner_app_config,
            "data_miner_config_errors": data_miner_config_errors,
            "data_miner_manifests": data_miner_manifests,
        }
