# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet
short_description: One inventory for the fleet, from static hosts and EC2 instances, with GPU facts
version_added: 0.1.0
description:
  - Builds one inventory from long-lived hosts written in the configuration (VPS, workstations) and EC2
    instances found in one or more regions, so that a host lands in the same groups whatever its origin.
  - The configuration is a YAML file whose name ends with C(fleet.yml) or C(fleet.yaml), for example
    C(inventories/prod/fleet.yml).
  - "EC2 regions are required (there is no silent \"all regions\") and are queried concurrently, one thread per
    source and region (O(concurrency))."
  - Each EC2 instance gets C(ec2_*) variables (see the examples), C(ansible_host) from O(ec2[].ansible_host),
    groups from its role tag (O(ec2[].role_tag)), and C(fleet_gpu) with the GPU model, count and memory when its
    instance type is a known GPU type (families g4dn, g5, g6, g6e, gr6, p4d, p4de, p5, p5e, p5en, and
    O(gpu_types)); hosts with GPUs join O(gpu_group). Static hosts can declare their GPUs with O(static.gpu).
  - A host that is both a static host and an EC2 instance (the instance's name per O(ec2[].hostnames) is the
    static host's name) is one host with the groups of both; O(prefer) decides whose variables win.
    Two EC2 instances never share a name; the later one falls back to its instance ID, with a warning.
  - Every value that comes from AWS (tags, names, addresses) is marked unsafe, so a tag value that looks like a Jinja
    template (a lookup that runs a command, say) stays text and is never templated. The plugin's own C(fleet_sources)
    and C(fleet_gpu), made from this file and the GPU table, are trusted like the file's values.
  - "With O(cache=true) the populated result (hosts, variables, every group, the results of O(compose),
    O(groups) and O(keyed_groups)) is cached under a key made from this file's path and content and the AWS
    environment variables that select an account or endpoint (C(AWS_PROFILE), C(AWS_DEFAULT_PROFILE),
    C(AWS_ACCESS_KEY_ID), C(AWS_ENDPOINT_URL), C(AWS_ENDPOINT_URL_EC2)). A cache hit makes no AWS call and
    evaluates no template; editing the file (or switching account) misses the cache. C(--flush-cache) and
    C(meta: refresh_inventory) query AWS again and replace the entry."
  - A result with failed regions (O(region_errors=warn)) is never cached.
  - Needs C(boto3) on the controller for EC2 sources; static hosts alone need nothing.
author:
  - Oceanid fleet maintainers (@oceanid)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it makes the file a configuration of this plugin.
    type: str
    required: true
    choices: [oceanid.fleet.fleet]
  static:
    description:
      - Hosts that are always in the inventory, by name. Each value is a mapping with the keys below, or empty.
    type: dict
    default: {}
    suboptions:
      groups:
        description: Groups the host is in (created when needed).
        type: list
        elements: str
        default: []
      vars:
        description: Host variables; values are templated when used, as in a YAML inventory.
        type: dict
        default: {}
      gpu:
        description:
          - The host's GPUs, as C(model), C(count) and C(memory_mib) (memory per GPU). The host gets C(fleet_gpu)
            and joins O(gpu_group) when C(count) is above zero.
        type: dict
  ec2:
    description:
      - EC2 sources. Each one lists instances in its regions with its filters and credentials.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - The source's name, used in error messages, in C(fleet_sources) and as a group of all its hosts.
          - Defaults to V(ec2) for the first source and V(ec2_2), V(ec2_3), ... for the next ones.
        type: str
      regions:
        description: The regions to query, at least one. Queried concurrently.
        type: list
        elements: str
        required: true
      tags:
        description:
          - Only instances with these tags (server-side filters). A value may be a string, a list of alternatives,
            or null for "has this tag with any value". EC2 wildcards (C(*), C(?)) work.
        type: dict
        default: {}
      filters:
        description:
          - More DescribeInstances filters, as filter name to value or list of values
            (U(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html)).
          - Use O(ec2[].states) rather than C(instance-state-name).
        type: dict
        default: {}
      states:
        description: Instance states to list.
        type: list
        elements: str
        choices: [pending, running, shutting-down, terminated, stopping, stopped]
        default: [running]
      hostnames:
        description:
          - How an instance is named in the inventory, in order of preference; the first one that is set wins.
          - "C(tag:<key>) (the tag's value), C(instance-id), C(private-dns-name), C(public-dns-name),
            C(private-ip-address), C(public-ip-address). The instance ID is always the last resort."
        type: list
        elements: str
        default: ['tag:Name', instance-id]
      ansible_host:
        description:
          - Which address becomes C(ansible_host), in order of preference; the first one the instance has wins.
          - "C(public-ip-address), C(private-ip-address), C(public-dns-name), C(private-dns-name),
            C(ipv6-address). With none of them set, C(ansible_host) is not set."
        type: list
        elements: str
        default: [public-ip-address, private-ip-address]
      role_tag:
        description:
          - The tag whose value names the instance's groups (comma-separated for several, for example
            C(gpu_hosts,k3s_agents)). Empty to disable.
        type: str
        default: 'fleet:role'
      groups:
        description: Groups every instance of this source joins.
        type: list
        elements: str
        default: []
      region_groups:
        description: Put each instance in a group C(<name>_<region>), for example C(ec2_us_east_1).
        type: bool
        default: true
      hostvars:
        description:
          - Which instance fields become host variables, each as C(ec2_<field>), or V(all) for every field.
          - "Fields: C(instance_id), C(instance_type), C(region), C(availability_zone), C(state), C(lifecycle)
            (V(spot) or V(on-demand)), C(launch_time) (ISO 8601, UTC), C(private_ip_address), C(public_ip_address),
            C(private_dns_name), C(public_dns_name), C(ipv6_address), C(subnet_id), C(vpc_id), C(image_id),
            C(key_name), C(architecture), C(security_group_ids), C(iam_instance_profile_arn), C(tags) (a dict)."
          - A field the instance does not have (no public address, no key pair) is not set.
          - O(compose), O(groups) and O(keyed_groups) see every field whether or not it is listed here, so a group
            by VPC does not need C(vpc_id) as a host variable.
          - The default keeps what plays use (identity, placement, addresses, lifecycle, tags). Every variable of
            every host is carried by each play and printed by C(ansible-inventory --list), so a large fleet pays for
            each one; the rest stays one O(ec2[].hostvars) entry or an C(oceanid.fleet.ec2_gpu_info) call away.
        type: list
        elements: str
        default: [instance_id, instance_type, region, availability_zone, lifecycle, private_ip_address, public_ip_address, tags]
      vars:
        description:
          - Variables for every instance of this source (for example C(ansible_user)); templated when used.
          - They come before the instance's own C(ec2_*) variables and C(ansible_host), which win on conflict.
        type: dict
        default: {}
      profile:
        description: The AWS profile to use (shared config and credentials files). Default is the AWS chain.
        type: str
      access_key:
        description: An AWS access key ID. Prefer a profile or the environment.
        type: str
      secret_key:
        description: The secret key that goes with O(ec2[].access_key).
        type: str
      session_token:
        description: A session token for temporary credentials.
        type: str
      endpoint_url:
        description: Talk to this EC2 endpoint instead of AWS's own (a VPC endpoint, a test server).
        type: str
  prefer:
    description:
      - For a host that is both static and in EC2, whose variables win on conflict. Groups are always merged.
    type: str
    choices: [static, ec2]
    default: static
  gpu_group:
    description: The group every host with GPUs joins (from its instance type or O(static.gpu)). Empty to disable.
    type: str
    default: gpu_hosts
  gpu_types:
    description:
      - GPU facts for instance types the built-in table does not know (or to correct it), as instance type to
        C(model), C(count) and C(memory_mib) (per GPU).
    type: dict
    default: {}
  concurrency:
    description: How many region queries run at the same time.
    type: int
    default: 8
  timeout:
    description: Seconds to wait to connect to and for each answer of the EC2 API (retries apply on top).
    type: float
    default: 30
  region_errors:
    description:
      - V(fail) stops with an error that names every failed source, region and credential, and why.
      - V(warn) warns and goes on with the regions that answered; such a result is not cached.
    type: str
    choices: [fail, warn]
    default: fail
notes:
  - A cache hit costs no API call and no template; what remains grows with the number of hosts and of variables per
    host (C(ansible-inventory --list) prints every one), hence the short default of O(ec2[].hostvars).
    ansible-core's C(inject_facts_as_vars = False) also spares it a per-host clean-up of facts.
  - ansible-core 2.19 evaluates templates noticeably slower than before; O(compose), O(groups) and O(keyed_groups)
    cost time per host on a cache miss only. Built-in grouping (role tag, GPU, region, source) uses no templates.
  - Stale cache entries of an older configuration are left to expire after O(cache_timeout).
seealso:
  - name: EC2 instance types with GPUs
    description: The instance families whose GPUs the plugin knows.
    link: https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html
"""

EXAMPLES = r"""
# inventories/prod/fleet.yml: two workstations and the EC2 GPU boxes of two regions
plugin: oceanid.fleet.fleet
static:
  tethys:
    groups: [k3s_servers]
    vars:
      ansible_host: tethys.example.com
  calypso:
    groups: [storage_nodes]
    gpu: {model: RTX 4090, count: 2, memory_mib: 24564}
    vars:
      ansible_host: calypso.example.com
ec2:
  - name: aws
    regions: [us-east-1, eu-west-1]
    tags:
      fleet:managed: "true"
    states: [pending, running]
    ansible_host: [public-ip-address, private-ip-address]
    role_tag: fleet:role            # "gpu_hosts,k3s_agents" puts the instance in both groups
    vars:
      ansible_user: ubuntu
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/oceanid-fleet-inventory
cache_timeout: 600

# Each EC2 host then has, besides ansible_host (fields it lacks, like a public address, are not set):
#   ec2_instance_id, ec2_instance_type, ec2_region, ec2_availability_zone, ec2_lifecycle (spot or on-demand),
#   ec2_private_ip_address, ec2_public_ip_address, ec2_tags (a dict); more with ec2[].hostvars, e.g.
#   hostvars: [instance_id, instance_type, region, lifecycle, launch_time, vpc_id, tags]  or  hostvars: [all]
# GPU hosts have fleet_gpu (vendor, model, count, memory_mib, memory_gib, total_memory_mib), static or EC2,
# and every host has fleet_sources, e.g. [static] or [static, aws].

---

# Constructed features work on every host, static or EC2 (evaluated on a cache miss only)
plugin: oceanid.fleet.fleet
ec2:
  - regions: [us-east-1]
    tags: {fleet:managed: "true"}
keyed_groups:
  - key: fleet_gpu.model | default('none')
    prefix: gpu
groups:
  spot: ec2_lifecycle | default('') == 'spot'
compose:
  ansible_host: ec2_private_ip_address | default(ansible_host | default(inventory_hostname))
"""

import concurrent.futures
import difflib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Mapping, MutableMapping

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

try:
    from ansible.template import trust_as_template as _trust
except ImportError:  # ansible-core before 2.19 templates every plain str: trusted already

    def _trust(value):
        return value


from ansible_collections.oceanid.fleet.plugins.module_utils._ec2_gpu import (
    gpu_facts,
    is_gpu_family,
    validate_extra_types,
)

# Bump when the cached payload's shape or meaning changes: old entries then miss.
CACHE_FORMAT = 3
# Environment variables that select another account or endpoint, so they are part of the cache key.
CACHE_KEY_ENVIRONMENT = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
)

STATES = ("pending", "running", "shutting-down", "terminated", "stopping", "stopped")
ADDRESS_FIELDS = {
    "public-ip-address": "public_ip_address",
    "private-ip-address": "private_ip_address",
    "public-dns-name": "public_dns_name",
    "private-dns-name": "private_dns_name",
    "ipv6-address": "ipv6_address",
}
HOSTNAME_FIELDS = {
    "instance-id": "instance_id",
    "public-ip-address": "public_ip_address",
    "private-ip-address": "private_ip_address",
    "public-dns-name": "public_dns_name",
    "private-dns-name": "private_dns_name",
}
# The fields of an instance (module_utils/_ec2_fleet.instance_record) that can become ec2_<field> variables.
INSTANCE_FIELDS = (
    "instance_id",
    "instance_type",
    "region",
    "availability_zone",
    "state",
    "lifecycle",
    "launch_time",
    "private_ip_address",
    "public_ip_address",
    "private_dns_name",
    "public_dns_name",
    "ipv6_address",
    "subnet_id",
    "vpc_id",
    "image_id",
    "key_name",
    "architecture",
    "security_group_ids",
    "iam_instance_profile_arn",
    "tags",
)
DEFAULT_HOSTVARS = [
    "instance_id",
    "instance_type",
    "region",
    "availability_zone",
    "lifecycle",
    "private_ip_address",
    "public_ip_address",
    "tags",
]
STATIC_KEYS = ("groups", "vars", "gpu")
# ec2 source key -> (python type(s) accepted, description of the type for messages)
SOURCE_KEYS = {
    "name": ((str,), "a string"),
    "regions": ((list,), "a list of region names"),
    "tags": ((dict,), "a mapping of tag key to value(s)"),
    "filters": ((dict,), "a mapping of filter name to value(s)"),
    "states": ((list,), "a list of instance states"),
    "hostnames": ((list, str), "a list"),
    "ansible_host": ((list, str), "a list"),
    "role_tag": ((str, type(None)), "a string"),
    "groups": ((list,), "a list of group names"),
    "region_groups": ((bool,), "true or false"),
    "hostvars": ((list,), "a list of instance fields"),
    "vars": ((dict,), "a mapping"),
    "profile": ((str,), "a string"),
    "access_key": ((str,), "a string"),
    "secret_key": ((str,), "a string"),
    "session_token": ((str,), "a string"),
    "endpoint_url": ((str,), "a string"),
}
SOURCE_DEFAULTS = {
    "tags": {},
    "filters": {},
    "states": ["running"],
    "hostnames": ["tag:Name", "instance-id"],
    "ansible_host": ["public-ip-address", "private-ip-address"],
    "role_tag": "fleet:role",
    "groups": [],
    "region_groups": True,
    "hostvars": DEFAULT_HOSTVARS,
    "vars": {},
}
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class _FleetConfigError(AnsibleParserError):
    """A problem with the configuration file."""


def _kind(value):
    """A value's type in words, for messages (ansible-core may hand in tagged subclasses of str, list, dict)."""
    for kind, words in (
        (bool, "a boolean"),
        (str, "a string"),
        (Mapping, "a mapping"),
        (list, "a list"),
        (int, "a number"),
        (float, "a number"),
    ):
        if isinstance(value, kind):
            return words
    return type(value).__name__


def _suggest(key, allowed):
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return " (did you mean '%s'?)" % close[0] if close else ""


def _plain(value):
    """A JSON-ready copy without ansible-core's data tags (origin, trust), for the cache."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


# ansible-core 2.19 and later template only values tagged as trusted, so an untagged str from AWS or from the cache is
# already unsafe and wrap_var hands it back as is; before 2.19 wrap_var makes an AnsibleUnsafeText of it.
_UNTAGGED_IS_UNSAFE = type(wrap_var("probe")) is str  # pylint: disable=unidiomatic-typecheck
_SCALARS = (str, int, float, bool, type(None))


def _unsafe(value):
    """wrap_var, with a fast path for the plain JSON values of the cache and of boto3 where they are unsafe already.

    A tagged value (a str subclass that may carry template trust) takes wrap_var's path, which strips the trust.
    """
    kind = type(value)
    if _UNTAGGED_IS_UNSAFE:
        if kind in _SCALARS:
            return value
        if kind is dict:
            return {_unsafe(k): _unsafe(v) for k, v in value.items()}
        if kind is list:
            return [_unsafe(v) for v in value]
    return wrap_var(value)


def _set_host_variables(inventory, host, variables, mark):
    """Set variables on the host itself, each value passed through ``mark`` (unsafe or trusted).

    Not through the inventory's set_variable: on ansible-core 2.19 that walks every value to tag where it came
    from, a third of a warm run for a large fleet. Nor through Host.set_variable where nothing is to be merged:
    it checks the name (ours are fixed and valid) and strips trust from it, for each of tens of thousands of
    values. A mapping that meets a mapping already set (a static host's variable) still merges as ansible does.
    """
    target = inventory.hosts[host]
    for key, value in variables.items():
        value = mark(value)
        current = target.vars  # read each time: a merge replaces the host's dict
        if key in current and isinstance(value, Mapping) and isinstance(current[key], MutableMapping):
            target.set_variable(key, value)
        else:
            current[key] = value


def _set_remote_variables(inventory, host, variables):
    """Variables from AWS (or computed from AWS values), marked unsafe: a template in them is never rendered."""
    _set_host_variables(inventory, host, variables, _unsafe)


class _Trusted:
    """Marks the plugin's own values (fleet_sources, fleet_gpu) as trusted, like the configuration's values.

    They come from the configuration and the GPU table, not from AWS, so they need not be unsafe, and on 2.19
    ``--list`` then prints them as plain strings, not as ``{"__ansible_unsafe": ...}``. The few distinct strings
    (source names, GPU models) are tagged once each and shared: a str cannot change.
    """

    def __init__(self):
        self._strings = {}

    def __call__(self, value):
        kind = type(value)
        if kind is dict:
            return {key: self(item) for key, item in value.items()}
        if kind is list:
            return [self(item) for item in value]
        if isinstance(value, str):
            trusted = self._strings.get(value)
            if trusted is None:
                trusted = self._strings[value] = _trust(str(value))
            return trusted
        return value


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class _Source:
    """One validated ``ec2:`` entry."""

    def __init__(self, index, raw):
        self.index = index
        settings = dict(SOURCE_DEFAULTS)
        settings.update({k: v for k, v in raw.items() if v is not None or k == "role_tag"})
        self.name = str(settings.get("name") or ("ec2" if index == 0 else "ec2_%d" % (index + 1)))
        self.regions = [str(r) for r in settings["regions"]]
        self.tags = settings["tags"]
        self.filters = settings["filters"]
        self.states = [str(s) for s in settings["states"]]
        self.hostnames = [str(h) for h in _as_list(settings["hostnames"])]
        self.ansible_host = [str(a) for a in _as_list(settings["ansible_host"])]
        self.role_tag = settings["role_tag"] or ""
        self.groups = [str(g) for g in settings["groups"]]
        self.region_groups = settings["region_groups"]
        fields = [str(f) for f in settings["hostvars"]]
        self.hostvars = INSTANCE_FIELDS if "all" in fields else tuple(f for f in INSTANCE_FIELDS if f in fields)
        self.vars = settings["vars"]
        self.profile = settings.get("profile")
        self.access_key = settings.get("access_key")
        self.secret_key = settings.get("secret_key")
        self.session_token = settings.get("session_token")
        self.endpoint_url = settings.get("endpoint_url")

    def api_filters(self):
        """DescribeInstances filters: tags, then the raw filters, then the states."""
        filters = []
        for key, value in self.tags.items():
            if value is None:
                filters.append({"Name": "tag-key", "Values": [str(key)]})
            else:
                filters.append({"Name": "tag:%s" % key, "Values": [str(v) for v in _as_list(value)]})
        for name, value in self.filters.items():
            filters.append({"Name": str(name), "Values": [str(v) for v in _as_list(value)]})
        filters.append({"Name": "instance-state-name", "Values": list(self.states)})
        return filters


class _Recorder:
    """Stands in for the inventory while the plugin populates it: forwards each call and records it.

    The recorded operations are what the cache keeps; replaying them rebuilds the same hosts, variables
    and groups (including what compose/groups/keyed_groups made) without a template or an API call.
    Variables written in the configuration are not recorded, only a reference to them (``cfg``): on a
    replay they come from the configuration just read, so they keep their trust and need no copy in the cache.
    """

    def __init__(self, inventory):
        self._inventory = inventory
        self.ops = []
        self._groups = set()

    def __getattr__(self, name):
        return getattr(self._inventory, name)

    def add_group(self, group):
        name = self._inventory.add_group(group)
        if name not in self._groups:
            self._groups.add(name)
            self.ops.append(("g", name))
        return name

    def add_host(self, host, group=None, port=None):
        name = self._inventory.add_host(host, group=group, port=port)
        self.ops.append(("h", name, group, port))
        return name

    def add_child(self, group, child):
        added = self._inventory.add_child(group, child)
        self.ops.append(("c", group, child))
        return added

    def set_variable(self, entity, varname, value):
        """What compose sets: derived from remote data, so unsafe too (and again on every replay)."""
        self._inventory.set_variable(entity, varname, _unsafe(value))
        self.ops.append(("v", entity, varname, value))

    def set_remote_variables(self, host, variables):
        """Variables from AWS (or derived from it): marked unsafe here and again on every replay."""
        _set_remote_variables(self._inventory, host, variables)
        self.ops.append(("V", host, variables))

    def set_plugin_variables(self, host, variables, trusted):
        """The plugin's own variables (fleet_sources, fleet_gpu): trusted here and again on every replay."""
        _set_host_variables(self._inventory, host, variables, trusted)
        self.ops.append(("P", host, variables))

    def set_config_variables(self, host, layer, variables):
        for key, value in variables.items():
            self._inventory.set_variable(host, key, value)
        self.ops.append(("cfg", host, layer))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """The fleet's inventory: static hosts plus EC2 instances, one host per name."""

    NAME = "oceanid.fleet.fleet"

    def __init__(self):
        super().__init__()
        self._config = None
        self._sources = []
        self._static = {}
        self._gpu_types = {}
        self._path = None
        self._ec2 = None
        self.api_calls = 0
        self._api_lock = threading.Lock()

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("fleet.yml", "fleet.yaml"))

    # --- configuration ---------------------------------------------------------------------------
    def _validate(self, config, path):
        """Check every key and the shape of every value; raise naming the first problems found."""
        problems = []
        allowed = set(self._options) | {"plugin"}
        for key in config:
            if key not in allowed:
                problems.append("unknown option '%s'%s" % (key, _suggest(key, allowed)))

        static = config.get("static") or {}
        if not isinstance(static, Mapping):
            problems.append("static must be a mapping of host name to {groups, vars, gpu}")
            static = {}
        for host, entry in static.items():
            where = "static.%s" % host
            if entry is None:
                continue
            if not isinstance(entry, Mapping):
                problems.append("%s must be a mapping with groups, vars or gpu, got %s" % (where, _kind(entry)))
                continue
            for key in entry:
                if key not in STATIC_KEYS:
                    problems.append("%s: unknown key '%s'%s" % (where, key, _suggest(key, STATIC_KEYS)))
            if not isinstance(entry.get("groups") or [], list):
                problems.append("%s.groups must be a list of group names" % where)
            if not isinstance(entry.get("vars") or {}, Mapping):
                problems.append("%s.vars must be a mapping" % where)
            if entry.get("gpu") is not None:
                problems.extend(
                    p.replace("gpu_types.", where + ".", 1) for p in validate_extra_types({"gpu": entry["gpu"]})
                )

        sources = config.get("ec2") or []
        if not isinstance(sources, list):
            problems.append("ec2 must be a list of sources")
            sources = []
        names = {}
        for index, raw in enumerate(sources):
            where = "ec2[%d]" % index
            if not isinstance(raw, Mapping):
                problems.append("%s must be a mapping, got %s" % (where, _kind(raw)))
                continue
            if raw.get("name"):
                where += " (%s)" % raw["name"]
            for key, value in raw.items():
                if key not in SOURCE_KEYS:
                    problems.append("%s: unknown key '%s'%s" % (where, key, _suggest(key, SOURCE_KEYS)))
                    continue
                types, words = SOURCE_KEYS[key]
                if value is not None and not isinstance(value, types):
                    problems.append("%s.%s must be %s, got %s" % (where, key, words, _kind(value)))
            regions = raw.get("regions")
            if not regions:
                problems.append("%s.regions is required: list the regions to query (there is no 'all regions')" % where)
            elif isinstance(regions, list):
                for region in regions:
                    if not isinstance(region, str) or not REGION_RE.match(region):
                        problems.append("%s.regions: '%s' is not a region name (like us-east-1)" % (where, region))
                if len(set(map(str, regions))) != len(regions):
                    problems.append("%s.regions lists a region twice" % where)
            for state in _as_list(raw.get("states")) if isinstance(raw.get("states"), list) else []:
                if state not in STATES:
                    problems.append("%s.states: unknown state '%s'; one of %s" % (where, state, ", ".join(STATES)))
            for hostname in _as_list(raw.get("hostnames")) if isinstance(raw.get("hostnames"), (list, str)) else []:
                if (
                    not (str(hostname).startswith("tag:") and len(str(hostname)) > 4)
                    and hostname not in HOSTNAME_FIELDS
                ):
                    problems.append(
                        "%s.hostnames: unknown '%s'; use tag:<key> or one of %s"
                        % (where, hostname, ", ".join(HOSTNAME_FIELDS))
                    )
            for address in (
                _as_list(raw.get("ansible_host")) if isinstance(raw.get("ansible_host"), (list, str)) else []
            ):
                if address not in ADDRESS_FIELDS:
                    problems.append(
                        "%s.ansible_host: unknown '%s'%s; one of %s"
                        % (where, address, _suggest(str(address), ADDRESS_FIELDS), ", ".join(ADDRESS_FIELDS))
                    )
            for field in raw.get("hostvars") or [] if isinstance(raw.get("hostvars"), list) else []:
                if field != "all" and field not in INSTANCE_FIELDS:
                    problems.append(
                        "%s.hostvars: unknown field '%s'%s; one of all, %s"
                        % (where, field, _suggest(str(field), INSTANCE_FIELDS), ", ".join(INSTANCE_FIELDS))
                    )
            for name in (raw.get("filters") or {}) if isinstance(raw.get("filters"), Mapping) else {}:
                if name == "instance-state-name":
                    problems.append("%s.filters: use states instead of the instance-state-name filter" % where)
            if bool(raw.get("access_key")) != bool(raw.get("secret_key")):
                problems.append("%s: access_key and secret_key go together" % where)
            name = raw.get("name") or ("ec2" if index == 0 else "ec2_%d" % (index + 1))
            if name in names:
                problems.append("%s: the name '%s' is already used by ec2[%d]" % (where, name, names[name]))
            names[name] = index

        gpu_types = config.get("gpu_types") or {}
        if gpu_types:
            problems.extend(validate_extra_types(gpu_types))
        if problems:
            raise _FleetConfigError("%s: invalid configuration:\n  - %s" % (path, "\n  - ".join(problems)))

    def _load(self, path):
        config = self._read_config_data(path)
        self._validate(config, path)
        self._config = config
        self._path = path
        self._static = {str(k): (v or {}) for k, v in (self.get_option("static") or {}).items()}
        self._sources = [_Source(i, raw) for i, raw in enumerate(self.get_option("ec2") or [])]
        self._gpu_types = self.get_option("gpu_types") or {}

    def get_cache_key(self, path):
        """Covers the file's path and content, the AWS account/endpoint environment and, when used, extra vars."""
        material = {
            "format": CACHE_FORMAT,
            "path": os.path.abspath(path),
            "config": self._config,
            "environment": {name: os.environ.get(name) for name in CACHE_KEY_ENVIRONMENT},
        }
        if self.get_option("use_extra_vars"):
            material["extra_vars"] = self._vars
        digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=repr).encode("utf-8")).hexdigest()
        return "%s_%s" % (self.NAME.replace(".", "_"), digest[:40])

    # --- parse -------------------------------------------------------------------------------------
    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._load(path)

        use_cache = bool(self.get_option("cache"))
        cache_key = self.get_cache_key(path) if use_cache else None
        if use_cache and cache:
            try:
                payload = self._cache[cache_key]
            except KeyError:
                payload = None
            if isinstance(payload, Mapping) and payload.get("format") == CACHE_FORMAT:
                self._replay(payload["ops"])
                self.display.vvv(
                    "oceanid.fleet.fleet: %s from the cache (%d hosts), no AWS call" % (path, payload.get("hosts", 0))
                )
                return

        started = time.monotonic()
        instances, complete = self._query_all()
        recorder = _Recorder(self.inventory)
        self._populate(recorder, instances)
        self.display.vvv(
            "oceanid.fleet.fleet: %s from %d DescribeInstances pages in %d region queries, %.2f s"
            % (path, self.api_calls, sum(len(s.regions) for s in self._sources), time.monotonic() - started)
        )
        if use_cache and complete:
            self._cache[cache_key] = {
                "format": CACHE_FORMAT,
                "hosts": len({op[1] for op in recorder.ops if op[0] == "h"}),
                "ops": _plain(recorder.ops),
            }

    # --- EC2 ---------------------------------------------------------------------------------------
    def _count_call(self):
        with self._api_lock:
            self.api_calls += 1

    def _query_region(self, source, region, client):
        """All matching instances of one region, normalized (runs in a worker thread)."""
        records = []
        paginator = client.get_paginator("describe_instances")
        pages = paginator.paginate(Filters=source.api_filters(), PaginationConfig={"PageSize": 1000})
        for page in pages:
            self._count_call()
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    records.append(self._ec2.instance_record(instance, region))
        records.sort(key=lambda r: r["instance_id"] or "")
        return records

    def _query_all(self):
        """Query every source and region concurrently; returns ({(source index, region): records}, complete)."""
        if not self._sources:
            return {}, True
        # Imported here, not at the top: boto3 takes a noticeable part of a second to import, and a cache
        # hit (or an inventory of static hosts only) should not pay for it.
        from ansible_collections.oceanid.fleet.plugins.module_utils import _ec2_fleet  # pylint: disable=import-outside-toplevel

        self._ec2 = _ec2_fleet
        if not _ec2_fleet.HAS_BOTO3:
            raise AnsibleParserError(
                "%s: the ec2 sources need the boto3 Python library on the controller (%s)"
                % (self._path, _ec2_fleet.BOTO3_IMPORT_ERROR.strip().splitlines()[-1])
            )
        failures = []
        tasks = []
        sessions = {}
        # boto3 sessions and client creation are not thread-safe: clients are made here, used in threads.
        for source in self._sources:
            try:
                session = _ec2_fleet.make_session(
                    source.profile, source.access_key, source.secret_key, source.session_token
                )
            except Exception as exc:  # pylint: disable=broad-except
                failures.append((source, "all regions", None, exc))
                continue
            sessions[source.index] = session
            for region in source.regions:
                try:
                    client = _ec2_fleet.make_client(
                        session, "ec2", region, source.endpoint_url, timeout=self.get_option("timeout")
                    )
                except Exception as exc:  # pylint: disable=broad-except
                    failures.append((source, region, session, exc))
                    continue
                tasks.append((source, region, client))

        results = {}
        workers = max(1, min(int(self.get_option("concurrency") or 1), len(tasks) or 1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-ec2") as pool:
            futures = {
                pool.submit(self._query_region, source, region, client): (source, region)
                for source, region, client in tasks
            }
            for future in concurrent.futures.as_completed(futures):
                source, region = futures[future]
                try:
                    results[(source.index, region)] = future.result()
                except Exception as exc:  # pylint: disable=broad-except
                    failures.append((source, region, sessions.get(source.index), exc))

        if failures:
            lines = []
            for source, region, session, exc in sorted(failures, key=lambda f: (f[0].index, f[1])):
                credential = (
                    _ec2_fleet.describe_credentials(session, source.profile)
                    if session is not None
                    else ("profile '%s'" % source.profile if source.profile else "the default credential chain")
                )
                endpoint = " via %s" % source.endpoint_url if source.endpoint_url else ""
                lines.append(
                    "ec2 source '%s', region %s%s, credentials: %s: %s"
                    % (source.name, region, endpoint, credential, _ec2_fleet.error_reason(exc))
                )
            if self.get_option("region_errors") == "fail":
                raise AnsibleParserError("%s: EC2 query failed:\n  - %s" % (self._path, "\n  - ".join(lines)))
            for line in lines:
                self.display.warning("%s: skipped (region_errors=warn): %s" % (self._path, line))
        return results, not failures

    # --- population --------------------------------------------------------------------------------
    def _ec2_name(self, source, record, taken):
        """The instance's inventory name: the first preference that is set and not another instance's name."""
        skipped = None
        for preference in source.hostnames:
            if preference.startswith("tag:"):
                value = record["tags"].get(preference[4:])
            else:
                value = record.get(HOSTNAME_FIELDS[preference])
            value = (value or "").strip()
            if not value:
                continue
            if value in taken:
                skipped = skipped or (value, taken[value])
                continue
            if skipped:
                self._warn_collision(source, record, skipped, value)
            return value
        value = record["instance_id"]
        if skipped:
            self._warn_collision(source, record, skipped, value)
        return value

    def _warn_collision(self, source, record, skipped, value):
        self.display.warning(
            "ec2 source '%s', region %s: instance %s would be named '%s' like instance %s; it is '%s' instead"
            % (source.name, record["region"], record["instance_id"], skipped[0], skipped[1], value)
        )

    def _gpu_facts_for_type(self, source, record):
        facts = gpu_facts(record["instance_type"], self._gpu_types)
        if facts is None:
            if is_gpu_family(record["instance_type"]):
                self.display.warning(
                    "ec2 source '%s': instance type %s of %s is not in the GPU table; add it to gpu_types"
                    % (source.name, record["instance_type"], record["instance_id"])
                )
            return None
        # the same keys as a static host's fleet_gpu; the type is ec2_instance_type already
        facts.pop("instance_type")
        return facts

    @staticmethod
    def _ec2_variables(source, record):
        """(host variables, template context): the fields chosen by hostvars, and every field, both without
        the fields the instance does not have; ansible_host in both."""
        context = {"ec2_%s" % key: value for key, value in record.items() if value is not None}
        hostvars = {"ec2_%s" % key: record[key] for key in source.hostvars if record.get(key) is not None}
        for preference in source.ansible_host:
            address = record.get(ADDRESS_FIELDS[preference])
            if address:
                hostvars["ansible_host"] = context["ansible_host"] = address
                break
        return hostvars, context

    def _role_groups(self, source, record):
        if not source.role_tag:
            return []
        value = record["tags"].get(source.role_tag) or ""
        return [part for part in re.split(r"[,\s]+", value) if part]

    def _populate(self, recorder, instances):
        """Merge static hosts and instances by name, then add them with their groups and variables."""
        hosts = {}  # name -> {"static": entry or None, "ec2": (source, record) or None}
        for name, entry in self._static.items():
            hosts[name] = {"static": entry, "ec2": None}
        taken = {}  # name -> instance id, for EC2 instances only
        seen = set()
        for source in self._sources:
            for region in source.regions:
                for record in instances.get((source.index, region), []):
                    if record["instance_id"] in seen:
                        continue  # an earlier source already lists it
                    seen.add(record["instance_id"])
                    name = self._ec2_name(source, record, taken)
                    taken[name] = record["instance_id"]
                    hosts.setdefault(name, {"static": None, "ec2": None})["ec2"] = (source, record)

        strict = self.get_option("strict")
        compose = self.get_option("compose")
        conditional_groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        gpu_group = self.get_option("gpu_group")
        prefer = self.get_option("prefer")
        sanitize = self._sanitize_group_name

        trusted = _Trusted()
        self.inventory = recorder
        try:
            for name, origin in hosts.items():
                recorder.add_host(name)
                group_names = []
                static_layer = ec2_layer = None
                sources = []
                gpu = None
                if origin["static"] is not None:
                    entry = origin["static"]
                    sources.append("static")
                    group_names.extend(str(g) for g in entry.get("groups") or [])
                    static_vars = dict(entry.get("vars") or {})
                    static_layer = ("static", static_vars)
                    if entry.get("gpu"):
                        gpu = gpu_facts("static", {"static": entry["gpu"]})
                        gpu.pop("instance_type")
                if origin["ec2"] is not None:
                    source, record = origin["ec2"]
                    sources.append(source.name)
                    group_names.append(source.name)
                    if source.region_groups:
                        group_names.append("%s_%s" % (source.name, record["region"]))
                    group_names.extend(source.groups)
                    group_names.extend(self._role_groups(source, record))
                    ec2_layer = (source,) + self._ec2_variables(source, record)
                    instance_gpu = self._gpu_facts_for_type(source, record)
                    if instance_gpu is not None and (gpu is None or prefer == "ec2"):
                        gpu = instance_gpu
                if gpu_group and gpu and gpu.get("count"):
                    group_names.append(gpu_group)

                for group in dict.fromkeys(sanitize(g) for g in group_names):
                    recorder.add_group(group)
                    recorder.add_child(group, name)

                # variables: the losing side first, the preferred side last
                merged = {}
                layers = [static_layer, ec2_layer] if prefer == "ec2" else [ec2_layer, static_layer]
                for layer in layers:
                    if layer is None:
                        continue
                    if layer[0] == "static":
                        recorder.set_config_variables(name, ["static", name], layer[1])
                        merged.update(layer[1])
                    else:
                        source, remote, context = layer
                        recorder.set_config_variables(name, ["source", source.index], source.vars)
                        merged.update(source.vars)
                        recorder.set_remote_variables(name, remote)
                        # unsafe in the templates too: before ansible-core 2.19 a plain str variable that looks
                        # like a template is templated when a compose/groups/keyed_groups expression reads it
                        merged.update(_unsafe(context))
                derived = {"fleet_sources": sources}
                if gpu is not None:
                    derived["fleet_gpu"] = gpu
                recorder.set_plugin_variables(name, derived, trusted)
                merged.update(derived)

                if compose or conditional_groups or keyed_groups:
                    self._set_composite_vars(compose, merged, name, strict=strict)
                    self._add_host_to_composed_groups(
                        conditional_groups, merged, name, strict=strict, fetch_hostvars=False
                    )
                    self._add_host_to_keyed_groups(keyed_groups, merged, name, strict=strict, fetch_hostvars=False)
        finally:
            self.inventory = recorder._inventory  # pylint: disable=protected-access

    def _config_layer(self, layer):
        kind, key = layer
        if kind == "static":
            return dict(self._static.get(key, {}).get("vars") or {})
        return self._sources[key].vars

    def _replay(self, ops):
        """Rebuild the populated result from the cache: remote values marked unsafe, the plugin's own trusted,
        config values from the file."""
        inventory = self.inventory
        trusted = _Trusted()
        add_group = inventory.add_group
        add_host = inventory.add_host
        add_child = inventory.add_child
        set_variable = inventory.set_variable
        for op in ops:
            kind = op[0]
            if kind == "V":
                _set_remote_variables(inventory, op[1], op[2])
            elif kind == "P":
                _set_host_variables(inventory, op[1], op[2], trusted)
            elif kind == "c":
                add_child(op[1], op[2])
            elif kind == "h":
                add_host(op[1], group=op[2], port=op[3])
            elif kind == "g":
                add_group(op[1])
            elif kind == "cfg":
                for key, value in self._config_layer(op[2]).items():
                    set_variable(op[1], key, value)
            elif kind == "v":
                set_variable(op[1], op[2], _unsafe(op[3]))
            else:
                raise AnsibleParserError(
                    "%s: unexpected cache entry %r; run with --flush-cache" % (self._path, to_native(kind))
                )
