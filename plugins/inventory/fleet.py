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
  - A host that is both a static host and an EC2 instance is one host with the groups of both; O(prefer) decides
    whose variables win. The instance is the static host when its name per O(ec2[].hostnames) is the static host's
    name, else when its instance ID or one of its addresses (public or private IP address or DNS name, IPv6
    address) is the static host's name or its C(ansible_host); the host keeps the static host's name.
  - Two EC2 instances never share a name; the later one falls back to its instance ID, with a warning. Two hosts
    that would be reached at the same address (C(ansible_host), else the name) get a warning.
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
    description:
      - Seconds to wait to connect to the EC2 API and for each of its answers, per attempt (see O(attempts)).
      - With the defaults a region whose endpoint does not answer fails after about 30 s (3 attempts of 10 s, plus
        the short back-off between them); the error says how many attempts were made and how long it waited.
    type: float
    default: 10
  attempts:
    description:
      - "How many times each EC2 request is tried, the first time included (AWS's standard retry mode: throttling,
        server errors, time-outs). V(1) never retries."
    type: int
    default: 3
  region_errors:
    description:
      - V(fail) stops with an error that names every failed source, region and credential, and why. The inventory
        then has no host at all, static ones included; with C(unparsed_is_failed) set (see the notes) that fails
        C(ansible-inventory) and C(ansible-playbook) loudly, which is the default because a partial fleet is easy to
        miss.
      - V(warn) keeps the static hosts and the regions that answered, and warns naming each skipped source and
        region and the regions the inventory has; such a result is not cached.
    type: str
    choices: [fail, warn]
    default: fail
notes:
  - "Under ansible-core's defaults an inventory source that fails (a bad key, a failed region) is only a warning:
    C(ansible-inventory) and C(ansible-playbook) go on with no host and exit 0. Set C(unparsed_is_failed = True)
    (and, where every source must parse, C(any_unparsed_is_failed = True)) in the C([inventory]) section of
    C(ansible.cfg), or C(ANSIBLE_INVENTORY_UNPARSED_FAILED=True) in the environment (an execution environment's
    settings), to make it an error; this plugin's message is then the first thing printed."
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
import re
import threading
import time

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_gpu_types import gpu_facts, is_gpu_family
from ansible_collections.oceanid.fleet.plugins.plugin_utils._fleet_cache import (
    CACHE_FORMAT,
    Recorder,
    cache_key,
    replay,
)
from ansible_collections.oceanid.fleet.plugins.plugin_utils._fleet_config import (
    ADDRESS_FIELDS,
    HOSTNAME_FIELDS,
    Source,
    validate,
)
from ansible_collections.oceanid.fleet.plugins.plugin_utils._fleet_values import unsafe

# The instance fields a static host can be matched by (besides the instance's inventory name), in this order.
MATCH_FIELDS = (
    "instance_id",
    "public_ip_address",
    "private_ip_address",
    "public_dns_name",
    "private_dns_name",
    "ipv6_address",
)


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
    def _load(self, path):
        config = self._read_config_data(path)
        validate(config, self._options, path)
        self._config = config
        self._path = path
        self._static = {str(k): (v or {}) for k, v in (self.get_option("static") or {}).items()}
        self._sources = [Source(i, raw) for i, raw in enumerate(self.get_option("ec2") or [])]
        self._gpu_types = self.get_option("gpu_types") or {}

    def get_cache_key(self, path):
        """Covers the file's path and content, the AWS account/endpoint environment and, when used, extra vars."""
        extra_vars = self._vars if self.get_option("use_extra_vars") else None
        return cache_key(self.NAME, path, self._config, extra_vars)

    # --- parse -------------------------------------------------------------------------------------
    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._load(path)

        use_cache = bool(self.get_option("cache"))
        key = self.get_cache_key(path) if use_cache else None
        if use_cache and cache:
            try:
                payload = self._cache[key]
            except KeyError:
                payload = None
            if isinstance(payload, dict) and payload.get("format") == CACHE_FORMAT:
                replay(self.inventory, payload["ops"], self._config_layer, path)
                self.display.vvv(
                    "oceanid.fleet.fleet: %s from the cache (%d hosts), no AWS call" % (path, payload.get("hosts", 0))
                )
                return

        started = time.monotonic()
        instances, complete = self._query_all()
        recorder = Recorder(self.inventory)
        self._populate(recorder, instances)
        self.display.vvv(
            "oceanid.fleet.fleet: %s from %d DescribeInstances pages in %d region queries, %.2f s"
            % (path, self.api_calls, sum(len(s.regions) for s in self._sources), time.monotonic() - started)
        )
        if use_cache and complete:
            self._cache[key] = recorder.payload()

    # --- EC2 ---------------------------------------------------------------------------------------
    def _count_call(self):
        with self._api_lock:
            self.api_calls += 1

    def _query_region(self, source, region, client, attempts):
        """All matching instances of one region, normalized (runs in a worker thread).

        ``attempts`` is a one-item list that counts the HTTP requests of the page being read (botocore's retries
        included), for the error message.
        """
        records = []
        paginator = client.get_paginator("describe_instances")
        pages = paginator.paginate(Filters=source.api_filters(), PaginationConfig={"PageSize": 1000})
        for page in pages:
            attempts[0] = 0
            self._count_call()
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    records.append(self._ec2.instance_record(instance, region))
        records.sort(key=lambda r: r["instance_id"] or "")
        return records

    @staticmethod
    def _count_attempts(client):
        """A counter of the client's HTTP requests (each retry is one), where the client has botocore's events."""
        attempts = [0]
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:

            def _sent(**_kwargs):
                attempts[0] += 1

            events.register("before-send.ec2.DescribeInstances", _sent)
        return attempts

    def _query_all(self):
        """Query every source and region concurrently; returns ({(source index, region): records}, complete)."""
        if not self._sources:
            return {}, True
        # Imported here, not at the top: boto3 takes a noticeable part of a second to import, and a cache
        # hit (or an inventory of static hosts only) should not pay for it.
        from ansible_collections.oceanid.fleet.plugins.module_utils import _ec2_client  # pylint: disable=import-outside-toplevel

        self._ec2 = _ec2_client
        if not _ec2_client.HAS_BOTO3:
            raise AnsibleParserError(
                "%s: the ec2 sources need the boto3 Python library on the controller (%s)"
                % (self._path, _ec2_client.BOTO3_IMPORT_ERROR.strip().splitlines()[-1])
            )
        timeout = float(self.get_option("timeout"))
        max_attempts = max(1, int(self.get_option("attempts")))
        failures = []  # (source, region or None for all of its regions, session, exception, attempt figures)
        tasks = []
        sessions = {}
        # boto3 sessions and client creation are not thread-safe: clients are made here, used in threads.
        for source in self._sources:
            try:
                session = _ec2_client.make_session(
                    source.profile, source.access_key, source.secret_key, source.session_token
                )
            except Exception as exc:  # pylint: disable=broad-except
                failures.append((source, None, None, exc, None))
                continue
            sessions[source.index] = session
            for region in source.regions:
                try:
                    client = _ec2_client.make_client(
                        session, "ec2", region, source.endpoint_url, timeout=timeout, max_attempts=max_attempts
                    )
                except Exception as exc:  # pylint: disable=broad-except
                    failures.append((source, region, session, exc, None))
                    continue
                tasks.append((source, region, client, self._count_attempts(client)))

        results = {}
        workers = max(1, min(int(self.get_option("concurrency") or 1), len(tasks) or 1))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-ec2") as pool:
            started = time.monotonic()
            futures = {
                pool.submit(self._query_region, source, region, client, attempts): (source, region, attempts)
                for source, region, client, attempts in tasks
            }
            for future in concurrent.futures.as_completed(futures):
                source, region, attempts = futures[future]
                try:
                    results[(source.index, region)] = future.result()
                except Exception as exc:  # pylint: disable=broad-except
                    waited = (attempts[0], time.monotonic() - started)
                    failures.append((source, region, sessions.get(source.index), exc, waited))

        if failures:
            self._report_failures(failures, results, _ec2_client, timeout)
        return results, not failures

    def _report_failures(self, failures, results, ec2, timeout):
        """Fail naming every failed source, region, credential and reason, or (region_errors=warn) warn."""
        lines = []
        for source, region, session, exc, waited in sorted(failures, key=lambda f: (f[0].index, f[1] or "")):
            credential = (
                ec2.describe_credentials(session, source.profile)
                if session is not None
                else ("profile '%s'" % source.profile if source.profile else "the default credential chain")
            )
            where = "region %s" % region if region else "all its regions (%s)" % ", ".join(source.regions)
            endpoint = " via %s" % source.endpoint_url if source.endpoint_url else ""
            reason = ec2.error_reason(exc)
            if waited and waited[0] and ec2.error_code(exc) is None:  # no answer from AWS: say how long we tried
                reason += " (%d attempt%s of up to %g s each, %.1f s in all; see the timeout and attempts options)" % (
                    waited[0],
                    "" if waited[0] == 1 else "s",
                    timeout,
                    waited[1],
                )
            lines.append(
                "ec2 source '%s', %s%s, credentials: %s: %s" % (source.name, where, endpoint, credential, reason)
            )
        if self.get_option("region_errors") == "fail":
            raise AnsibleParserError("%s: EC2 query failed:\n  - %s" % (self._path, "\n  - ".join(lines)))
        for line in lines:
            self.display.warning("%s: skipped (region_errors=warn): %s" % (self._path, line))
        healthy = [
            "'%s' %s" % (source.name, ", ".join(r for r in source.regions if (source.index, r) in results))
            for source in self._sources
            if any((source.index, r) in results for r in source.regions)
        ]
        self.display.warning(
            "%s: region_errors=warn: the inventory has the static hosts (%d) and the regions that answered: %s"
            % (self._path, len(self._static), "; ".join(healthy) or "none")
        )

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

    def _static_index(self):
        """Instance ID or address -> static host, from each static host's name and its ``ansible_host``."""
        index = {}
        for name, entry in self._static.items():
            index.setdefault(name, name)
            address = (entry.get("vars") or {}).get("ansible_host")
            if isinstance(address, str) and address and "{" not in address:
                index.setdefault(str(address), name)
        return index

    def _static_match(self, source, record, name, hosts, static_index):
        """The static host this instance is, or None: by its inventory name first, then by its instance ID or an
        address equal to a static host's name or ``ansible_host``. A static host that is another instance
        already is not taken again: the two hosts then share an address, with a warning."""
        if name in self._static and hosts[name]["ec2"] is None:
            return name
        for field in MATCH_FIELDS:
            value = record.get(field)
            static = static_index.get(value) if value else None
            if static is None:
                continue
            if hosts[static]["ec2"] is None:
                self.display.vvv(
                    "oceanid.fleet.fleet: instance %s is static host '%s' (its %s is %s)"
                    % (record["instance_id"], static, field, value)
                )
                return static
            self.display.warning(
                "ec2 source '%s', region %s: instance %s (%s %s) and static host '%s', which is instance %s already, "
                "share an address; they stay two hosts"
                % (
                    source.name,
                    record["region"],
                    record["instance_id"],
                    field,
                    value,
                    static,
                    hosts[static]["ec2"][1]["instance_id"],
                )
            )
        return None

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

    def _merge(self, instances):
        """Static hosts and instances by inventory name: {name: {"static": entry or None, "ec2": (source, record)
        or None}}."""
        hosts = {name: {"static": entry, "ec2": None} for name, entry in self._static.items()}
        static_index = self._static_index()
        taken = {}  # name -> instance id, for EC2 instances only
        seen = set()
        for source in self._sources:
            for region in source.regions:
                for record in instances.get((source.index, region), []):
                    if record["instance_id"] in seen:
                        continue  # an earlier source already lists it
                    seen.add(record["instance_id"])
                    name = self._ec2_name(source, record, taken)
                    name = self._static_match(source, record, name, hosts, static_index) or name
                    taken[name] = record["instance_id"]
                    hosts.setdefault(name, {"static": None, "ec2": None})["ec2"] = (source, record)
        return hosts

    def _warn_shared_addresses(self, addresses):
        """Two hosts that ansible would reach at the same address are most likely one machine written twice."""
        by_address = {}
        for name, address in addresses.items():
            by_address.setdefault(str(address), []).append(name)
        for address, names in by_address.items():
            if len(names) > 1:
                self.display.warning(
                    "%s: hosts %s have the same address %s (ansible_host); if they are one machine, name the "
                    "static host like the instance (or give it the instance's ID or address) to make them one host"
                    % (self._path, ", ".join("'%s'" % n for n in names), address)
                )

    def _populate(self, recorder, instances):
        """Merge static hosts and instances, then add them with their groups and variables."""
        hosts = self._merge(instances)
        strict = self.get_option("strict")
        compose = self.get_option("compose")
        conditional_groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        gpu_group = self.get_option("gpu_group")
        prefer = self.get_option("prefer")
        sanitize = self._sanitize_group_name
        addresses = {}

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
                    static_layer = ("static", dict(entry.get("vars") or {}))
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
                        merged.update(unsafe(context))
                derived = {"fleet_sources": sources}
                if gpu is not None:
                    derived["fleet_gpu"] = gpu
                recorder.set_plugin_variables(name, derived)
                merged.update(derived)
                address = merged.get("ansible_host") or name
                if isinstance(address, str) and "{" not in address:
                    addresses[name] = address

                if compose or conditional_groups or keyed_groups:
                    self._set_composite_vars(compose, merged, name, strict=strict)
                    self._add_host_to_composed_groups(
                        conditional_groups, merged, name, strict=strict, fetch_hostvars=False
                    )
                    self._add_host_to_keyed_groups(keyed_groups, merged, name, strict=strict, fetch_hostvars=False)
        finally:
            self.inventory = recorder.inventory
        self._warn_shared_addresses(addresses)

    def _config_layer(self, layer):
        """The configuration's variables that a recorded ``cfg`` operation names."""
        kind, key = layer
        if kind == "static":
            return dict(self._static.get(key, {}).get("vars") or {})
        return self._sources[key].vars
