# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``oceanid.fleet.fleet`` inventory's cache: its key, and the recorded population that a cache hit replays.

Private to this collection (the leading underscore).
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.oceanid.fleet.plugins.plugin_utils._fleet_values import (
    Trusted,
    plain,
    set_host_variables,
    unsafe,
)

# Bump when the cached payload's shape or meaning changes: old entries then miss.
# 4: static hosts are matched to instances by instance ID and address too.
CACHE_FORMAT = 4
# Environment variables that select another account or endpoint, so they are part of the cache key.
CACHE_KEY_ENVIRONMENT = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
)


def cache_key(plugin_name, path, config, extra_vars=None):
    """Covers the file's path and content, the AWS account/endpoint environment and, when given, extra vars."""
    material = {
        "format": CACHE_FORMAT,
        "path": os.path.abspath(path),
        "config": config,
        "environment": {name: os.environ.get(name) for name in CACHE_KEY_ENVIRONMENT},
    }
    if extra_vars is not None:
        material["extra_vars"] = extra_vars
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=repr).encode("utf-8")).hexdigest()
    return "%s_%s" % (plugin_name.replace(".", "_"), digest[:40])


class Recorder:
    """Stands in for the inventory while the plugin populates it: forwards each call and records it.

    The recorded operations are what the cache keeps; ``replay`` rebuilds the same hosts, variables and groups
    (including what compose/groups/keyed_groups made) without a template or an API call. Variables written in
    the configuration are not recorded, only a reference to them (``cfg``): on a replay they come from the
    configuration just read, so they keep their trust and need no copy in the cache.
    """

    def __init__(self, inventory):
        self.inventory = inventory
        self.ops = []
        self._groups = set()
        self._trusted = Trusted()

    def __getattr__(self, name):
        return getattr(self.inventory, name)

    def add_group(self, group):
        name = self.inventory.add_group(group)
        if name not in self._groups:
            self._groups.add(name)
            self.ops.append(("g", name))
        return name

    def add_host(self, host, group=None, port=None):
        name = self.inventory.add_host(host, group=group, port=port)
        self.ops.append(("h", name, group, port))
        return name

    def add_child(self, group, child):
        added = self.inventory.add_child(group, child)
        self.ops.append(("c", group, child))
        return added

    def set_variable(self, entity, varname, value):
        """What compose sets: derived from remote data, so unsafe too (and again on every replay)."""
        self.inventory.set_variable(entity, varname, unsafe(value))
        self.ops.append(("v", entity, varname, value))

    def set_remote_variables(self, host, variables):
        """Variables from AWS (or derived from it): marked unsafe here and again on every replay."""
        set_host_variables(self.inventory, host, variables, unsafe)
        self.ops.append(("V", host, variables))

    def set_plugin_variables(self, host, variables):
        """The plugin's own variables (fleet_sources, fleet_gpu): trusted here and again on every replay."""
        set_host_variables(self.inventory, host, variables, self._trusted)
        self.ops.append(("P", host, variables))

    def set_config_variables(self, host, layer, variables):
        """Variables from the configuration file, through the inventory like a YAML inventory's; ``layer`` names
        where they are in the file (see ``replay``)."""
        for key, value in variables.items():
            self.inventory.set_variable(host, key, value)
        self.ops.append(("cfg", host, layer))

    def payload(self):
        """What the cache keeps: plain JSON."""
        return {
            "format": CACHE_FORMAT,
            "hosts": len({op[1] for op in self.ops if op[0] == "h"}),
            "ops": plain(self.ops),
        }


def replay(inventory, ops, config_layer, path):
    """Rebuild the populated result from the cache: remote values marked unsafe, the plugin's own trusted, config
    values from the file (``config_layer(layer)`` returns the variables a ``cfg`` operation names)."""
    trusted = Trusted()
    add_group = inventory.add_group
    add_host = inventory.add_host
    add_child = inventory.add_child
    set_variable = inventory.set_variable
    for op in ops:
        kind = op[0]
        if kind == "V":
            set_host_variables(inventory, op[1], op[2], unsafe)
        elif kind == "P":
            set_host_variables(inventory, op[1], op[2], trusted)
        elif kind == "c":
            add_child(op[1], op[2])
        elif kind == "h":
            add_host(op[1], group=op[2], port=op[3])
        elif kind == "g":
            add_group(op[1])
        elif kind == "cfg":
            for key, value in config_layer(op[2]).items():
                set_variable(op[1], key, value)
        elif kind == "v":
            set_variable(op[1], op[2], unsafe(op[3]))
        else:
            raise AnsibleParserError("%s: unexpected cache entry %r; run with --flush-cache" % (path, to_native(kind)))
