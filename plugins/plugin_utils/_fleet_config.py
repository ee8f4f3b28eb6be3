# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``oceanid.fleet.fleet`` inventory's configuration: what a fleet.yml may say, its validation, one EC2 source.

Private to this collection (the leading underscore); the plugin's DOCUMENTATION is the user-facing reference.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from ansible.errors import AnsibleParserError

from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_gpu_types import validate_extra_types

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
# The fields of an instance (module_utils/ec2_instances.instance_record) that can become ec2_<field> variables.
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


class FleetConfigError(AnsibleParserError):
    """A problem with the configuration file."""


def kind(value):
    """A value's type in words, for messages (ansible-core may hand in tagged subclasses of str, list, dict)."""
    for cls, words in (
        (bool, "a boolean"),
        (str, "a string"),
        (Mapping, "a mapping"),
        (list, "a list"),
        (int, "a number"),
        (float, "a number"),
    ):
        if isinstance(value, cls):
            return words
    return type(value).__name__


def suggest(key, allowed):
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return " (did you mean '%s'?)" % close[0] if close else ""


def as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def source_name(index, name=None):
    """A source's name: its own, else ec2 for the first one and ec2_<n> for the next ones."""
    return str(name or ("ec2" if index == 0 else "ec2_%d" % (index + 1)))


class Source:
    """One validated ``ec2:`` entry."""

    def __init__(self, index, raw):
        self.index = index
        settings = dict(SOURCE_DEFAULTS)
        settings.update({k: v for k, v in raw.items() if v is not None or k == "role_tag"})
        self.name = source_name(index, settings.get("name"))
        self.regions = [str(r) for r in settings["regions"]]
        self.tags = settings["tags"]
        self.filters = settings["filters"]
        self.states = [str(s) for s in settings["states"]]
        self.hostnames = [str(h) for h in as_list(settings["hostnames"])]
        self.ansible_host = [str(a) for a in as_list(settings["ansible_host"])]
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
                filters.append({"Name": "tag:%s" % key, "Values": [str(v) for v in as_list(value)]})
        for name, value in self.filters.items():
            filters.append({"Name": str(name), "Values": [str(v) for v in as_list(value)]})
        filters.append({"Name": "instance-state-name", "Values": list(self.states)})
        return filters


def _static_problems(static):
    problems = []
    if not isinstance(static, Mapping):
        return ["static must be a mapping of host name to {groups, vars, gpu}"]
    for host, entry in static.items():
        where = "static.%s" % host
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            problems.append("%s must be a mapping with groups, vars or gpu, got %s" % (where, kind(entry)))
            continue
        for key in entry:
            if key not in STATIC_KEYS:
                problems.append("%s: unknown key '%s'%s" % (where, key, suggest(key, STATIC_KEYS)))
        if not isinstance(entry.get("groups") or [], list):
            problems.append("%s.groups must be a list of group names" % where)
        if not isinstance(entry.get("vars") or {}, Mapping):
            problems.append("%s.vars must be a mapping" % where)
        if entry.get("gpu") is not None:
            problems.extend(
                p.replace("gpu_types.", where + ".", 1) for p in validate_extra_types({"gpu": entry["gpu"]})
            )
    return problems


def _listed(raw, key, types=(list,)):
    """The entries of a list (or string) option, or none when it has another type (reported already)."""
    value = raw.get(key)
    return as_list(value) if isinstance(value, types) else []


def _source_problems(index, raw, names):
    where = "ec2[%d]" % index
    if not isinstance(raw, Mapping):
        return ["%s must be a mapping, got %s" % (where, kind(raw))]
    problems = []
    if raw.get("name"):
        where += " (%s)" % raw["name"]
    for key, value in raw.items():
        if key not in SOURCE_KEYS:
            problems.append("%s: unknown key '%s'%s" % (where, key, suggest(key, SOURCE_KEYS)))
            continue
        types, words = SOURCE_KEYS[key]
        if value is not None and not isinstance(value, types):
            problems.append("%s.%s must be %s, got %s" % (where, key, words, kind(value)))
    regions = raw.get("regions")
    if not regions:
        problems.append("%s.regions is required: list the regions to query (there is no 'all regions')" % where)
    elif isinstance(regions, list):
        for region in regions:
            if not isinstance(region, str) or not REGION_RE.match(region):
                problems.append("%s.regions: '%s' is not a region name (like us-east-1)" % (where, region))
        if len(set(map(str, regions))) != len(regions):
            problems.append("%s.regions lists a region twice" % where)
    for state in _listed(raw, "states"):
        if state not in STATES:
            problems.append("%s.states: unknown state '%s'; one of %s" % (where, state, ", ".join(STATES)))
    for hostname in _listed(raw, "hostnames", (list, str)):
        if not (str(hostname).startswith("tag:") and len(str(hostname)) > 4) and hostname not in HOSTNAME_FIELDS:
            problems.append(
                "%s.hostnames: unknown '%s'; use tag:<key> or one of %s" % (where, hostname, ", ".join(HOSTNAME_FIELDS))
            )
    for address in _listed(raw, "ansible_host", (list, str)):
        if address not in ADDRESS_FIELDS:
            problems.append(
                "%s.ansible_host: unknown '%s'%s; one of %s"
                % (where, address, suggest(str(address), ADDRESS_FIELDS), ", ".join(ADDRESS_FIELDS))
            )
    for field in _listed(raw, "hostvars"):
        if field != "all" and field not in INSTANCE_FIELDS:
            problems.append(
                "%s.hostvars: unknown field '%s'%s; one of all, %s"
                % (where, field, suggest(str(field), INSTANCE_FIELDS), ", ".join(INSTANCE_FIELDS))
            )
    if isinstance(raw.get("filters"), Mapping) and "instance-state-name" in raw["filters"]:
        problems.append("%s.filters: use states instead of the instance-state-name filter" % where)
    if bool(raw.get("access_key")) != bool(raw.get("secret_key")):
        problems.append("%s: access_key and secret_key go together" % where)
    name = source_name(index, raw.get("name"))
    if name in names:
        problems.append("%s: the name '%s' is already used by ec2[%d]" % (where, name, names[name]))
    names[name] = index
    return problems


def validate(config, options, path):
    """Check every key and the shape of every value; raise FleetConfigError naming every problem found.

    ``options`` are the option names the plugin's documentation declares (``plugin`` is allowed besides).
    """
    problems = []
    allowed = set(options) | {"plugin"}
    for key in config:
        if key not in allowed:
            problems.append("unknown option '%s'%s" % (key, suggest(key, allowed)))
    problems.extend(_static_problems(config.get("static") or {}))
    sources = config.get("ec2") or []
    if not isinstance(sources, list):
        problems.append("ec2 must be a list of sources")
        sources = []
    names = {}
    for index, raw in enumerate(sources):
        problems.extend(_source_problems(index, raw, names))
    gpu_types = config.get("gpu_types") or {}
    if gpu_types:
        problems.extend(validate_extra_types(gpu_types))
    if problems:
        raise FleetConfigError("%s: invalid configuration:\n  - %s" % (path, "\n  - ".join(problems)))
