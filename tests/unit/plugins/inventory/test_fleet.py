# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.fleet through ansible-core's InventoryManager, with fake EC2 clients (no network).

The fakes stand in for boto3 at ``_ec2_client.make_session``/``make_client``; everything else (validation, threads,
naming, merging, groups, constructed features, the cache and its replay) is the plugin's real code.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from unittest import mock

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.inventory.host import Host
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins import inventory as inventory_plugins
from ansible.plugins.loader import inventory_loader
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError

from ansible_collections.oceanid.fleet.plugins.inventory import fleet as fleet_plugin
from ansible_collections.oceanid.fleet.plugins.module_utils import _ec2_client
from ansible_collections.oceanid.fleet.plugins.plugin_utils import _fleet_values

try:  # ansible-core 2.19+: trust instead of unsafe wrappers
    from ansible.template import is_trusted_as_template
except ImportError:  # pragma: no cover - older cores
    from ansible.utils.unsafe_proxy import AnsibleUnsafe

    def is_trusted_as_template(value):
        return not isinstance(value, AnsibleUnsafe)


def instance(
    instance_id,
    instance_type="g6.xlarge",
    name=None,
    role=None,
    public_ip="54.0.0.1",
    private_ip="10.0.0.1",
    zone="us-east-1a",
    lifecycle=None,
    **tags,
):
    """A DescribeInstances instance as botocore returns it."""
    tag_list = [{"Key": k.replace("__", ":"), "Value": v} for k, v in tags.items()]
    if name:
        tag_list.append({"Key": "Name", "Value": name})
    if role:
        tag_list.append({"Key": "fleet:role", "Value": role})
    result = {
        "InstanceId": instance_id,
        "InstanceType": instance_type,
        "Placement": {"AvailabilityZone": zone},
        "State": {"Name": "running", "Code": 16},
        "LaunchTime": datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "PrivateIpAddress": private_ip,
        "PrivateDnsName": "ip-10-0-0-1.ec2.internal",
        "PublicDnsName": "",
        "SubnetId": "subnet-1",
        "VpcId": "vpc-1",
        "ImageId": "ami-1",
        "Architecture": "x86_64",
        "SecurityGroups": [{"GroupId": "sg-1", "GroupName": "default"}],
        "Tags": tag_list,
    }
    if public_ip:
        result["PublicIpAddress"] = public_ip
    if lifecycle:
        result["InstanceLifecycle"] = lifecycle
    return result


class FakeEC2:
    """A client with a describe_instances paginator; records filters and runs in whichever thread calls it."""

    def __init__(self, region, instances=(), delay=0.0, error=None, pages=1, sends=1):
        self.region, self.instances, self.delay, self.error, self.pages = region, list(instances), delay, error, pages
        self.sends = sends  # HTTP requests (attempts) botocore would make before the error
        self.filters = None
        self.threads = []
        self.handlers = []
        self.meta = mock.Mock(events=mock.Mock(register=lambda event, handler: self.handlers.append((event, handler))))

    def get_paginator(self, name):
        assert name == "describe_instances"
        return self

    def paginate(self, Filters, PaginationConfig):
        self.filters = Filters
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        if self.error:
            for _attempt in range(self.sends):
                for event, handler in self.handlers:
                    if event == "before-send.ec2.DescribeInstances":
                        handler(request=None)
            raise self.error
        size = max(1, -(-len(self.instances) // self.pages))
        return [
            {"Reservations": [{"Instances": self.instances[i : i + size]}]}
            for i in range(0, max(1, len(self.instances)), size)
        ]


class FakeSession:
    def __init__(self, credentials=None):
        self.credentials = credentials or Credentials("AKIAEXAMPLE0000WXYZ", "secret", method="env")

    def get_credentials(self):
        return self.credentials


class FakeAWS:
    """Patches the plugin's AWS helpers: clients per (source endpoint/profile, region)."""

    def __init__(self):
        self.clients = {}
        self.created = []
        self.settings = []  # (region, timeout, max_attempts) of each client made
        self.session_error = None

    def add(self, region, *instances, **kwargs):
        self.clients[region] = FakeEC2(region, instances, **kwargs)
        return self.clients[region]

    def make_session(self, profile=None, access_key=None, secret_key=None, session_token=None):
        if self.session_error is not None:
            raise self.session_error  # pylint: disable=raising-bad-type
        return FakeSession()

    def make_client(self, session, service, region, endpoint_url=None, timeout=30.0, max_attempts=3):
        self.created.append(region)
        self.settings.append((region, timeout, max_attempts))
        return self.clients.setdefault(region, FakeEC2(region))

    @property
    def calls(self):
        return sum(len(c.threads) for c in self.clients.values())


@pytest.fixture
def aws():
    fake = FakeAWS()
    with (
        mock.patch.object(_ec2_client, "make_session", fake.make_session),
        mock.patch.object(_ec2_client, "make_client", fake.make_client),
    ):
        yield fake


@pytest.fixture
def config(tmp_path):
    def _write(data, name="fleet.yml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"plugin": "oceanid.fleet.fleet", **data}, sort_keys=False))
        return path

    return _write


def load(path, cache=True):
    return InventoryManager(loader=DataLoader(), sources=[str(path)], cache=cache)


def load_failing(path):
    """The plugin's own error (InventoryManager only shows it as a warning before its generic one)."""
    plugin = inventory_loader.get("oceanid.fleet.fleet")
    with pytest.raises(AnsibleParserError) as caught:
        plugin.parse(InventoryData(), DataLoader(), str(path))
    return " ".join(str(caught.value).split())


@pytest.fixture
def warnings():
    """What the plugin warned about (through the inventory plugins' Display)."""
    seen = []
    with mock.patch.object(
        inventory_plugins.display, "warning", side_effect=lambda msg, *a, **k: seen.append(" ".join(str(msg).split()))
    ):
        yield seen


def group_hosts(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts()) if group in inventory.groups else []


def host_vars(inventory, name):
    return inventory.get_host(name).get_vars()


# --- configuration ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,ok", [("fleet.yml", True), ("prod.fleet.yaml", True), ("hosts.yml", False), ("fleet.json", False)]
)
def test_verify_file(tmp_path, name, ok):
    path = tmp_path / name
    path.write_text("plugin: oceanid.fleet.fleet\n")
    assert fleet_plugin.InventoryModule().verify_file(str(path)) is ok


@pytest.mark.parametrize(
    "data,messages",
    [
        ({"stattic": {}}, ["unknown option 'stattic' (did you mean 'static'?)"]),
        (
            {"ec2": [{"regions": ["us-east-1"], "tag": {"a": "b"}}]},
            ["ec2[0]: unknown key 'tag' (did you mean 'tags'?)"],
        ),
        (
            {"ec2": [{"name": "aws"}]},
            ["ec2[0] (aws).regions is required: list the regions to query (there is no 'all regions')"],
        ),
        (
            {"ec2": [{"regions": ["us-east1", "us-west-2", "us-west-2"]}]},
            ["'us-east1' is not a region name", "ec2[0].regions lists a region twice"],
        ),
        ({"ec2": [{"regions": ["us-east-1"], "states": ["runing"]}]}, ["ec2[0].states: unknown state 'runing'"]),
        ({"ec2": [{"regions": ["us-east-1"], "hostnames": ["dns-name"]}]}, ["ec2[0].hostnames: unknown 'dns-name'"]),
        (
            {"ec2": [{"regions": ["us-east-1"], "ansible_host": ["public-ip"]}]},
            ["ec2[0].ansible_host: unknown 'public-ip' (did you mean 'public-ip-address'?)"],
        ),
        ({"ec2": [{"regions": ["us-east-1"], "filters": {"instance-state-name": "running"}}]}, ["use states instead"]),
        (
            {"ec2": [{"regions": ["us-east-1"], "hostvars": ["instance_id", "vpc"]}]},
            ["ec2[0].hostvars: unknown field 'vpc' (did you mean 'vpc_id'?); one of all, instance_id,"],
        ),
        (
            {"ec2": [{"regions": ["us-east-1"], "hostvars": "all"}]},
            ["ec2[0].hostvars must be a list of instance fields, got a string"],
        ),
        ({"ec2": [{"regions": ["us-east-1"], "access_key": "AK"}]}, ["access_key and secret_key go together"]),
        (
            {"ec2": [{"regions": ["us-east-1"]}, {"name": "ec2", "regions": ["us-east-1"]}]},
            ["the name 'ec2' is already used by ec2[0]"],
        ),
        ({"ec2": [{"regions": "us-east-1"}]}, ["ec2[0].regions must be a list of region names, got a string"]),
        (
            {"static": {"calypso": {"group": ["gpu_hosts"]}}},
            ["static.calypso: unknown key 'group' (did you mean 'groups'?)"],
        ),
        ({"static": {"calypso": {"gpu": {"model": "A", "count": "two"}}}}, ["static.calypso.gpu: missing memory_mib"]),
        (
            {"gpu_types": {"g7.xlarge": {"model": "B200", "count": -1, "memory_mib": 1}}},
            ["gpu_types.g7.xlarge.count must be a non-negative integer"],
        ),
    ],
)
def test_a_bad_configuration_names_every_problem(config, aws, data, messages):
    message = load_failing(config(data))
    for expected in messages:
        assert expected in message
    assert aws.calls == 0


# --- static hosts --------------------------------------------------------------------------------------------------
def test_static_hosts_alone_need_no_aws(config):
    path = config(
        {
            "static": {
                "tethys": {
                    "groups": ["k3s_servers"],
                    "vars": {"ansible_host": "tethys.example.com", "motd": "{{ inventory_hostname }}"},
                },
                "calypso": {"groups": ["storage_nodes"], "gpu": {"model": "RTX 4090", "count": 2, "memory_mib": 24564}},
                "bare": None,
            }
        }
    )
    with mock.patch.object(_ec2_client, "make_session", side_effect=AssertionError("no AWS for static hosts")):
        inventory = load(path)
    assert group_hosts(inventory, "k3s_servers") == ["tethys"]
    assert group_hosts(inventory, "gpu_hosts") == ["calypso"]  # its GPUs put it there
    assert group_hosts(inventory, "ungrouped") == ["bare"]
    tethys = host_vars(inventory, "tethys")
    assert tethys["ansible_host"] == "tethys.example.com"
    assert is_trusted_as_template(tethys["motd"])  # written in the file: templated when used
    assert host_vars(inventory, "calypso")["fleet_gpu"] == {
        "vendor": "nvidia",
        "model": "RTX 4090",
        "count": 2,
        "memory_mib": 24564,
        "memory_gib": 24.0,
        "total_memory_mib": 49128,
    }
    assert host_vars(inventory, "bare")["fleet_sources"] == ["static"]


# --- EC2 -------------------------------------------------------------------------------------------------------------
def test_instances_get_groups_gpu_facts_and_addresses(config, aws, warnings):
    aws.add(
        "us-east-1",
        instance("i-1", "g6.12xlarge", name="big", role="gpu_hosts,k3s_agents"),
        instance("i-2", "t3.large", name="small", role="k3s agents", public_ip=None),
        instance("i-3", "g6.96xlarge", role=""),  # a size the table does not know
        instance("i-4", "g5.xlarge", name="spot-box", lifecycle="spot", evil="{{ lookup('pipe', 'id') }}"),
    )
    aws.add("eu-west-1", instance("i-5", "p5.48xlarge", name="h100", zone="eu-west-1b"))
    path = config(
        {
            "ec2": [
                {
                    "name": "aws",
                    "regions": ["us-east-1", "eu-west-1"],
                    "tags": {"fleet:managed": "true", "team": ["a", "b"], "owner": None},
                    "groups": ["cloud"],
                    "vars": {"ansible_user": "ubuntu"},
                }
            ]
        }
    )
    inventory = load(path)
    assert sorted(inventory.hosts) == ["big", "h100", "i-3", "small", "spot-box"]
    assert group_hosts(inventory, "gpu_hosts") == ["big", "h100", "spot-box"]
    assert group_hosts(inventory, "k3s_agents") == ["big"]
    assert (
        group_hosts(inventory, "k3s") == group_hosts(inventory, "agents") == ["small"]
    )  # whitespace separates roles too
    assert (
        group_hosts(inventory, "aws") == group_hosts(inventory, "cloud") == ["big", "h100", "i-3", "small", "spot-box"]
    )
    assert group_hosts(inventory, "aws_eu_west_1") == ["h100"]
    big = host_vars(inventory, "big")
    assert (
        big["fleet_gpu"]["count"] == 4
        and big["fleet_gpu"]["model"] == "L4"
        and big["fleet_gpu"]["total_memory_mib"] == 4 * 22888
    )
    assert big["ansible_host"] == "54.0.0.1" and big["ansible_user"] == "ubuntu"
    assert {k: v for k, v in big.items() if k.startswith("ec2_")} == {  # the default hostvars
        "ec2_instance_id": "i-1",
        "ec2_instance_type": "g6.12xlarge",
        "ec2_region": "us-east-1",
        "ec2_availability_zone": "us-east-1a",
        "ec2_lifecycle": "on-demand",
        "ec2_private_ip_address": "10.0.0.1",
        "ec2_public_ip_address": "54.0.0.1",
        "ec2_tags": {"Name": "big", "fleet:role": "gpu_hosts,k3s_agents"},
    }
    assert big["fleet_gpu"] == {
        "vendor": "nvidia",
        "model": "L4",
        "count": 4,
        "memory_mib": 22888,
        "memory_gib": 22.4,
        "total_memory_mib": 4 * 22888,
    }
    small = host_vars(inventory, "small")
    assert small["ansible_host"] == "10.0.0.1"  # no public address: the private one
    assert "ec2_public_ip_address" not in small  # a field the instance lacks is not set
    assert "fleet_gpu" not in host_vars(inventory, "i-3")
    assert any("g6.96xlarge of i-3 is not in the GPU table" in w for w in warnings)
    assert host_vars(inventory, "spot-box")["ec2_lifecycle"] == "spot"
    assert host_vars(inventory, "h100")["fleet_gpu"]["memory_mib"] == 81920
    evil = host_vars(inventory, "spot-box")["ec2_tags"]["evil"]
    assert evil == "{{ lookup('pipe', 'id') }}" and not is_trusted_as_template(evil)
    assert not is_trusted_as_template(big["ansible_host"])
    # server-side filters: tags (a list, "any value"), then the states
    assert aws.clients["us-east-1"].filters == [
        {"Name": "tag:fleet:managed", "Values": ["true"]},
        {"Name": "tag:team", "Values": ["a", "b"]},
        {"Name": "tag-key", "Values": ["owner"]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]


def test_regions_are_queried_concurrently(config, aws):
    regions = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"]
    for index, region in enumerate(regions):
        aws.add(region, instance("i-%d" % index, zone=region + "a"), delay=0.4)
    path = config({"ec2": [{"regions": regions}]})
    start = time.monotonic()
    inventory = load(path)
    elapsed = time.monotonic() - start
    assert len(inventory.hosts) == 4
    assert elapsed < 1.2, "4 regions of 0.4 s took %.2f s: not concurrent" % elapsed
    assert len({aws.clients[r].threads[0] for r in regions}) == 4
    assert aws.created == regions  # clients made up front, in order

    aws.clients.clear()
    for index, region in enumerate(regions):
        aws.add(region, instance("i-%d" % index, zone=region + "a"), delay=0.2)
    start = time.monotonic()
    load(config({"ec2": [{"regions": regions}], "concurrency": 1}, name="serial.fleet.yml"))
    assert time.monotonic() - start >= 0.8


def test_pages_are_all_read(config, aws):
    aws.add("us-east-1", *[instance("i-%02d" % i, name="n%02d" % i) for i in range(10)], pages=4)
    inventory = load(config({"ec2": [{"regions": ["us-east-1"]}]}))
    assert len(inventory.hosts) == 10


def test_two_instances_never_share_a_name(config, aws, warnings):
    aws.add("us-east-1", instance("i-b", name="gpu"), instance("i-a", name="gpu"))
    aws.add("eu-west-1", instance("i-c", name="gpu", zone="eu-west-1a"))
    inventory = load(config({"ec2": [{"regions": ["us-east-1", "eu-west-1"]}]}))
    assert sorted(inventory.hosts) == ["gpu", "i-b", "i-c"]
    assert host_vars(inventory, "gpu")["ec2_instance_id"] == "i-a"  # first by region order, then instance ID
    assert (
        "ec2 source 'ec2', region us-east-1: instance i-b would be named 'gpu' like instance i-a; it is 'i-b' instead"
        in warnings
    )


def test_hostname_and_address_preferences(config, aws):
    aws.add("us-east-1", instance("i-1", name="box", public_ip="54.1.1.1", private_ip="10.1.1.1"))
    path = config(
        {"ec2": [{"regions": ["us-east-1"], "hostnames": ["private-ip-address"], "ansible_host": "private-dns-name"}]}
    )
    inventory = load(path)
    assert list(inventory.hosts) == ["10.1.1.1"]
    assert host_vars(inventory, "10.1.1.1")["ansible_host"] == "ip-10-0-0-1.ec2.internal"


@pytest.mark.parametrize(
    "prefer,address,user", [("static", "seaweed1.example.com", "ops"), ("ec2", "54.0.0.9", "ubuntu")]
)
def test_a_host_in_both_sources_is_one_host(config, aws, prefer, address, user):
    aws.add("us-east-1", instance("i-9", "t3.large", name="seaweed1", role="k3s_agents", public_ip="54.0.0.9"))
    path = config(
        {
            "static": {
                "seaweed1": {
                    "groups": ["storage_nodes"],
                    "vars": {"ansible_host": "seaweed1.example.com", "ansible_user": "ops", "only_static": 1},
                }
            },
            "ec2": [{"regions": ["us-east-1"], "vars": {"ansible_user": "ubuntu"}}],
            "prefer": prefer,
        }
    )
    inventory = load(path)
    assert list(inventory.hosts) == ["seaweed1"]
    assert group_hosts(inventory, "storage_nodes") == group_hosts(inventory, "k3s_agents") == ["seaweed1"]
    variables = host_vars(inventory, "seaweed1")
    assert variables["ansible_host"] == address and variables["ansible_user"] == user
    assert variables["only_static"] == 1 and variables["ec2_instance_id"] == "i-9"
    assert variables["fleet_sources"] == ["static", "ec2"]


@pytest.mark.parametrize(
    "static_name,static_vars",
    [
        ("10.0.0.7", {}),  # keyed by the private IP address
        ("54.0.0.7", {}),  # keyed by the public IP address
        ("i-7", {}),  # keyed by the instance ID
        ("box", {"ansible_host": "54.0.0.7"}),  # its ansible_host is the instance's public address
        ("box", {"ansible_host": "10.0.0.7"}),  # or the private one
    ],
)
def test_a_static_host_given_by_address_or_id_is_the_instance(config, aws, warnings, static_name, static_vars):
    aws.add("us-east-1", instance("i-7", name="gpu-7", role="k3s_agents", public_ip="54.0.0.7", private_ip="10.0.0.7"))
    path = config(
        {
            "static": {static_name: {"groups": ["storage_nodes"], "vars": static_vars}},
            "ec2": [{"regions": ["us-east-1"]}],
        }
    )
    inventory = load(path)
    assert list(inventory.hosts) == [static_name]  # one host, named as the static entry
    assert group_hosts(inventory, "storage_nodes") == group_hosts(inventory, "k3s_agents") == [static_name]
    variables = host_vars(inventory, static_name)
    assert variables["ec2_instance_id"] == "i-7" and variables["fleet_sources"] == ["static", "ec2"]
    assert variables["ansible_host"] == static_vars.get("ansible_host", "54.0.0.7")
    assert not any("same address" in w or "share an address" in w for w in warnings)


def test_a_name_match_comes_before_an_address_match_and_two_hosts_on_one_address_warn(config, aws, warnings):
    aws.add(
        "us-east-1",
        instance("i-1", name="box", public_ip="54.0.0.9"),
        instance("i-2", name="other", public_ip="54.0.0.9"),  # another VPC's instance, same address
    )
    path = config({"static": {"box": {"vars": {"ansible_host": "54.0.0.9"}}}, "ec2": [{"regions": ["us-east-1"]}]})
    inventory = load(path)
    assert sorted(inventory.hosts) == ["box", "other"]
    assert host_vars(inventory, "box")["ec2_instance_id"] == "i-1"
    assert (
        "ec2 source 'ec2', region us-east-1: instance i-2 (public_ip_address 54.0.0.9) and static host 'box', "
        "which is instance i-1 already, share an address; they stay two hosts" in warnings
    )
    assert any("hosts 'box', 'other' have the same address 54.0.0.9 (ansible_host)" in w for w in warnings)


def test_a_static_host_on_an_instance_address_is_cached_as_one_host(config, aws, tmp_path):
    aws.add("us-east-1", instance("i-7", name="gpu-7", public_ip="54.0.0.7"))
    path = cached_config(config, tmp_path, static={"box": {"vars": {"ansible_host": "54.0.0.7"}}})
    cold = load(path)
    warm = load(path)
    assert aws.calls == 2 and list(warm.hosts) == list(cold.hosts) == ["box"]  # one query per region, cold only
    assert snapshot(warm) == snapshot(cold)


def test_hostvars_chooses_the_fields_and_templates_see_them_all(config, aws):
    aws.add(
        "us-east-1", instance("i-1", name="a", public_ip=None), instance("i-2", "t3.large", name="b", zone="us-east-1b")
    )
    path = config(
        {
            "ec2": [{"regions": ["us-east-1"], "hostvars": ["launch_time", "vpc_id", "public_ip_address"]}],
            "keyed_groups": [{"key": "ec2_subnet_id", "prefix": "net"}],
            "compose": {"zone": "ec2_availability_zone", "has_public": "ec2_public_ip_address is defined"},
        }
    )
    inventory = load(path)
    a = host_vars(inventory, "a")
    assert {k: v for k, v in a.items() if k.startswith("ec2_")} == {
        "ec2_launch_time": "2025-01-02T03:04:05Z",
        "ec2_vpc_id": "vpc-1",
    }
    assert a["zone"] == "us-east-1a" and a["has_public"] is False and host_vars(inventory, "b")["has_public"] is True
    assert group_hosts(inventory, "net_subnet_1") == ["a", "b"]
    every = host_vars(load(config({"ec2": [{"regions": ["us-east-1"], "hostvars": ["all"]}]})), "b")
    assert (
        every["ec2_security_group_ids"] == ["sg-1"]
        and every["ec2_state"] == "running"
        and every["ec2_architecture"] == "x86_64"
    )
    assert "ec2_key_name" not in every and "ec2_ipv6_address" not in every  # the instance has none


def test_a_template_in_a_tag_stays_text_through_compose_and_keyed_groups(config, aws):
    aws.add("us-east-1", instance("i-1", name="a", owner="{{ lookup('pipe', 'echo pwned') }}"))
    inventory = load(
        config(
            {
                "ec2": [{"regions": ["us-east-1"]}],
                "compose": {"owner": "ec2_tags.owner"},
                "keyed_groups": [{"key": "ec2_tags.owner", "prefix": "owner"}],
            }
        )
    )
    owner = host_vars(inventory, "a")["owner"]
    assert owner == "{{ lookup('pipe', 'echo pwned') }}" and not is_trusted_as_template(owner)
    assert not any("pwned" in name and "lookup" not in name for name in inventory.groups)


def test_unsafe_marks_remote_values_whatever_their_type():
    from ansible.template import trust_as_template  # pylint: disable=import-outside-toplevel

    trusted = trust_as_template("{{ lookup('pipe', 'id') }}")
    assert is_trusted_as_template(trusted)
    marked = _fleet_values.unsafe({"tags": {trusted: [trusted, 1, None]}, "n": 2.5})
    ((key, values),) = marked["tags"].items()
    assert not is_trusted_as_template(key) and not is_trusted_as_template(values[0]) and values[1:] == [1, None]
    assert marked["n"] == 2.5


def test_constructed_features_apply_to_every_host(config, aws):
    aws.add("us-east-1", instance("i-1", "g6e.xlarge", name="l40s"))
    path = config(
        {
            "static": {"tethys": {"groups": ["k3s_servers"]}},
            "ec2": [{"regions": ["us-east-1"]}],
            "compose": {"gpu_memory": "fleet_gpu.memory_gib | default(0)"},
            "keyed_groups": [{"key": "fleet_gpu.model | default('none')", "prefix": "gpu", "parent_group": "by_gpu"}],
            "groups": {"cloud": "'ec2' in fleet_sources"},
        }
    )
    inventory = load(path)
    assert host_vars(inventory, "l40s")["gpu_memory"] == 44.7
    assert host_vars(inventory, "tethys")["gpu_memory"] == 0
    assert group_hosts(inventory, "gpu_L40S") == ["l40s"] and group_hosts(inventory, "gpu_none") == ["tethys"]
    assert sorted(g.name for g in inventory.groups["by_gpu"].child_groups) == ["gpu_L40S", "gpu_none"]
    assert group_hosts(inventory, "cloud") == ["l40s"]


# --- errors ----------------------------------------------------------------------------------------------------------
def test_failures_name_source_region_credential_and_reason(config, aws):
    aws.add("us-east-1", instance("i-1"))
    denied = {
        "Error": {"Code": "UnauthorizedOperation", "Message": "You are not authorized to perform this operation."}
    }
    aws.add("eu-west-1", error=ClientError(denied, "DescribeInstances"))
    aws.add("ap-south-1", error=EndpointConnectionError(endpoint_url="https://ec2.ap-south-1.amazonaws.com/"))
    message = load_failing(config({"ec2": [{"name": "aws", "regions": ["us-east-1", "eu-west-1", "ap-south-1"]}]}))
    assert (
        "ec2 source 'aws', region ap-south-1, credentials: access key ****WXYZ from environment variables: cannot reach the EC2 endpoint: "
        'Could not connect to the endpoint URL: "https://ec2.ap-south-1.amazonaws.com/"'
    ) in message
    assert (
        "ec2 source 'aws', region eu-west-1, credentials: access key ****WXYZ from environment variables: UnauthorizedOperation: "
        "You are not authorized to perform this operation. (the credentials lack an IAM permission for this call)"
    ) in message
    assert "region us-east-1" not in message


def test_a_missing_profile_fails_every_region_of_its_source(config, aws):
    from botocore.exceptions import ProfileNotFound

    aws.session_error = ProfileNotFound(profile="prod")
    message = load_failing(config({"ec2": [{"name": "aws", "regions": ["us-east-1"], "profile": "prod"}]}))
    assert (
        "ec2 source 'aws', all its regions (us-east-1), credentials: profile 'prod': "
        "The config profile (prod) could not be found" in message
    )


def test_time_outs_are_bounded_by_default_and_configurable(config, aws):
    aws.add("us-east-1", instance("i-1"))
    load(config({"ec2": [{"regions": ["us-east-1"]}]}))
    load(config({"ec2": [{"regions": ["us-east-1"]}], "timeout": 2.5, "attempts": 1}, name="quick.fleet.yml"))
    assert aws.settings == [("us-east-1", 10.0, 3), ("us-east-1", 2.5, 1)]


def test_a_silent_endpoint_says_how_long_it_waited_and_how_often(config, aws):
    from botocore.exceptions import ReadTimeoutError

    silent = ReadTimeoutError(endpoint_url="https://ec2.eu-west-1.amazonaws.com/")
    aws.add("eu-west-1", error=silent, sends=3)
    message = load_failing(config({"ec2": [{"name": "aws", "regions": ["eu-west-1"]}]}))
    assert (
        "ec2 source 'aws', region eu-west-1, credentials: access key ****WXYZ from environment variables: " in message
    )
    assert "did not answer in time" in message
    assert "(3 attempts of up to 10 s each, " in message and "see the timeout and attempts options)" in message


def test_an_aws_error_answer_gets_no_attempt_figures(config, aws):
    denied = {"Error": {"Code": "AuthFailure", "Message": "no"}}
    aws.add("eu-west-1", error=ClientError(denied, "DescribeInstances"))
    message = load_failing(config({"ec2": [{"regions": ["eu-west-1"]}]}))
    assert "AuthFailure: no" in message and "attempt" not in message


def test_region_errors_warn_keeps_static_hosts_and_names_skipped_and_healthy_regions(config, aws, warnings):
    aws.add("us-east-1", instance("i-1", name="gpu-a"))
    aws.add("ap-south-1", instance("i-2", name="gpu-b", zone="ap-south-1a", public_ip="54.0.0.2"))
    aws.add("eu-west-1", error=EndpointConnectionError(endpoint_url="https://ec2.eu-west-1.amazonaws.com/"))
    path = config(
        {
            "static": {"tethys": {"groups": ["k3s_servers"]}},
            "ec2": [{"name": "aws", "regions": ["us-east-1", "eu-west-1", "ap-south-1"]}],
            "region_errors": "warn",
        }
    )
    inventory = load(path)
    assert sorted(inventory.hosts) == ["gpu-a", "gpu-b", "tethys"]
    assert any("skipped (region_errors=warn): ec2 source 'aws', region eu-west-1" in w for w in warnings)
    assert any(
        "region_errors=warn: the inventory has the static hosts (1) and the regions that answered: "
        "'aws' us-east-1, ap-south-1" in w
        for w in warnings
    )


def test_region_errors_fail_is_the_default_and_keeps_no_host(config, aws):
    aws.add("eu-west-1", error=EndpointConnectionError(endpoint_url="https://ec2.eu-west-1.amazonaws.com/"))
    path = config({"static": {"tethys": {}}, "ec2": [{"regions": ["eu-west-1"]}]})
    assert "EC2 query failed" in load_failing(path)
    with (  # ansible-core's defaults
        mock.patch.object(C, "INVENTORY_ANY_UNPARSED_IS_FAILED", False),
        mock.patch.object(C, "INVENTORY_UNPARSED_IS_FAILED", False),
    ):
        assert "tethys" not in load(path).hosts  # InventoryManager drops the failed source whole
    with (
        mock.patch.object(C, "INVENTORY_ANY_UNPARSED_IS_FAILED", True),  # this repository's ansible.cfg
        pytest.raises(AnsibleError, match="Completely failed to parse inventory source"),
    ):
        load(path)


# --- cache -----------------------------------------------------------------------------------------------------------
def cached_config(config, tmp_path, **extra):
    data = {
        "static": {
            "tethys": {
                "groups": ["k3s_servers"],
                "vars": {"ansible_host": "tethys.example.com", "greeting": "{{ 'hi' }}"},
            }
        },
        "ec2": [{"regions": ["us-east-1", "eu-west-1"]}],
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(tmp_path / "cache"),
        "keyed_groups": [{"key": "ec2_instance_type | default('static')", "prefix": "type"}],
        "compose": {"where": "ec2_region | default('home')"},
    }
    data.update(extra)
    return config(data)


def snapshot(inventory):
    return (
        {name: sorted(h.name for h in g.get_hosts()) for name, g in inventory.groups.items()},
        {
            name: {
                k: v
                for k, v in inventory.get_host(name).get_vars().items()
                if k not in ("inventory_file", "inventory_dir")
            }
            for name in inventory.hosts
        },
    )


def test_a_cache_hit_replays_everything_without_a_query_or_a_template(config, aws, tmp_path):
    aws.add("us-east-1", instance("i-1", name="gpu-a", role="gpu_hosts"))
    aws.add("eu-west-1", instance("i-2", "p4d.24xlarge", name="gpu-b", zone="eu-west-1a"))
    path = cached_config(config, tmp_path)
    cold = load(path)
    assert aws.calls == 2
    assert len(list((tmp_path / "cache").iterdir())) == 1

    with (
        mock.patch.object(fleet_plugin.InventoryModule, "_query_all", side_effect=AssertionError("queried")),
        mock.patch.object(fleet_plugin.InventoryModule, "_set_composite_vars", side_effect=AssertionError("templated")),
        mock.patch.object(
            fleet_plugin.InventoryModule, "_add_host_to_keyed_groups", side_effect=AssertionError("templated")
        ),
    ):
        warm = load(path)
    assert aws.calls == 2
    assert snapshot(warm) == snapshot(cold)
    assert group_hosts(warm, "type_p4d_24xlarge") == ["gpu-b"] and group_hosts(warm, "type_static") == ["tethys"]
    gpu_a = host_vars(warm, "gpu-a")
    assert not is_trusted_as_template(gpu_a["ec2_tags"]["Name"]) and not is_trusted_as_template(gpu_a["where"])
    assert is_trusted_as_template(host_vars(warm, "tethys")["greeting"])  # from the file, not from the cache

    load(path, cache=False)  # --flush-cache / refresh_inventory
    assert aws.calls == 4


def test_only_remote_values_are_unsafe_cold_and_from_the_cache(config, aws, tmp_path):
    """fleet_sources and fleet_gpu come from the configuration and the GPU table, so they are trusted like the
    file's own values (on 2.19 --list prints them as plain strings); every value from AWS stays unsafe."""
    aws.add("us-east-1", instance("i-1", name="gpu-a"), instance("i-2", name="gpu-b"))
    path = cached_config(config, tmp_path)
    for inventory in (load(path), load(path)):  # cold, then a cache hit
        for name in ("gpu-a", "gpu-b"):
            variables = host_vars(inventory, name)
            assert variables["fleet_gpu"]["model"] == "L4" and is_trusted_as_template(variables["fleet_gpu"]["model"])
            assert all(is_trusted_as_template(source) for source in variables["fleet_sources"])
            assert not is_trusted_as_template(variables["ec2_instance_type"]) and not is_trusted_as_template(
                variables["ansible_host"]
            )
    assert aws.calls == 2  # one page per region, both from the cold load


def test_remote_variables_merge_into_a_mapping_as_host_set_variable_does():
    """Values are written to the host directly, except where a mapping meets a mapping: there Host.set_variable
    decides (it merges under hash_behaviour=merge), so a static host's mapping variable is treated as ansible treats it."""
    inventory = InventoryData()
    inventory.add_host("box")
    inventory.hosts["box"].set_variable("ec2_tags", {"owner": "ops"})
    inventory.hosts["box"].set_variable("ansible_host", "box.example.com")
    with mock.patch.object(Host, "set_variable", autospec=True, side_effect=Host.set_variable) as host_set_variable:
        _fleet_values.set_host_variables(
            inventory,
            "box",
            {"ec2_tags": {"Name": "box"}, "ansible_host": "54.0.0.1", "ec2_region": "us-east-1"},
            _fleet_values.unsafe,
        )
    assert [c.args[1] for c in host_set_variable.call_args_list] == ["ec2_tags"]
    variables = inventory.hosts["box"].vars
    assert variables["ansible_host"] == "54.0.0.1" and variables["ec2_region"] == "us-east-1"


def test_the_cache_key_covers_content_environment_and_extra_vars(config, aws, tmp_path, monkeypatch):
    aws.add("us-east-1", instance("i-1", name="gpu-a"))
    path = cached_config(config, tmp_path)
    load(path)
    load(path)
    assert aws.calls == 2  # the second load was a hit

    cached_config(config, tmp_path, compose={"where": "'elsewhere'"})  # an edit of the file
    assert host_vars(load(path), "gpu-a")["where"] == "elsewhere"
    assert aws.calls == 4

    monkeypatch.setenv("AWS_PROFILE", "other-account")
    load(path)
    assert aws.calls == 6
    load(path)
    assert aws.calls == 6


def test_a_partial_result_is_not_cached(config, aws, tmp_path, warnings):
    aws.add("us-east-1", instance("i-1", name="gpu-a"))
    aws.add(
        "eu-west-1",
        error=ClientError({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, "DescribeInstances"),
    )
    path = cached_config(config, tmp_path, region_errors="warn")
    inventory = load(path)
    assert "gpu-a" in inventory.hosts
    assert any("skipped (region_errors=warn): ec2 source 'ec2', region eu-west-1" in w for w in warnings)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_the_cached_payload_is_plain_json(config, aws, tmp_path):
    aws.add("us-east-1", instance("i-1", name="gpu-a"))
    load(cached_config(config, tmp_path))
    (entry,) = (tmp_path / "cache").iterdir()
    text = entry.read_text()
    assert "__ansible_type" not in text and "TrustedAsTemplate" not in text and "tethys.example.com" not in text
    payload = json.loads(json.loads(text)["__payload__"]) if "__payload__" in text else json.loads(text)
    assert payload["format"] == fleet_plugin.CACHE_FORMAT and payload["hosts"] == 2
