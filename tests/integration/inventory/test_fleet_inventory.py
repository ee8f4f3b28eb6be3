# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The oceanid.fleet.fleet inventory plugin, run by ansible-inventory against moto's EC2 in three regions.

Every EC2 request goes through the proxy of tests/support/moto_ec2.py, which counts them: that is how "a cache hit
makes no API call" is measured, and how a region is made to fail.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from tests.integration.inventory.fleet_helpers import REGIONS, REPO_ROOT, VENV_BIN, run
from tests.support.inventory_output import group_members as groups_of
from tests.support.inventory_output import plain
from tests.support.moto_ec2 import seed_instances

STATIC = {
    "tethys": {"groups": ["k3s_servers"], "vars": {"ansible_host": "tethys.example.com"}},
    "calypso": {
        "groups": ["gpu_hosts"],
        "gpu": {"model": "RTX 4090", "count": 2, "memory_mib": 24564},
        "vars": {"ansible_host": "calypso.example.com"},
    },
    "seaweed1": {
        "groups": ["storage_nodes"],
        "vars": {"ansible_host": "seaweed1.example.com", "seaweed_role": "master"},
    },
}
EVIL = "{{ lookup('pipe', 'id') }}"


def managed(name: str, role: str, **extra: str) -> dict[str, str]:
    return {"Name": name, "fleet:managed": "true", "fleet:role": role, **extra}


@pytest.fixture(scope="module")
def fleet(moto):
    """Instances in three regions; returns {name or key: instance id} and each one's public address."""
    moto.reset()
    east, west, south = (moto.client("ec2", r) for r in REGIONS)
    ids = {}
    for client, name, itype, tags in [
        (east, "gpu-a", "g6.xlarge", managed("gpu-a", "gpu_hosts")),
        (east, "gpu-b", "g5.2xlarge", managed("gpu-b", "k3s_agents")),  # a GPU type: also gpu_hosts
        (east, "cpu-agent", "t3.large", managed("cpu-agent", "k3s_agents")),
        (east, "seaweed1", "t3.large", managed("seaweed1", "storage_nodes")),  # also a static host
        (east, "evil", "g6.xlarge", managed("evil", "gpu_hosts, k3s_agents", note=EVIL)),
        (east, "unmanaged", "g6.xlarge", {"Name": "unmanaged"}),
        (east, "stopped", "g6.xlarge", managed("stopped", "gpu_hosts")),
        (west, "p4", "p4d.24xlarge", managed("p4", "gpu_hosts")),
        (west, "gpu-a-west", "g6.xlarge", managed("gpu-a", "gpu_hosts")),  # same Name as gpu-a
        (south, "g4", "g4dn.12xlarge", managed("g4", "gpu_hosts")),
    ]:
        ids[name] = seed_instances(client, 1, itype, tags)[0]
    east.stop_instances(InstanceIds=[ids["stopped"]])
    addresses = {}
    for client in (east, west, south):
        for reservation in client.describe_instances()["Reservations"]:
            for instance in reservation["Instances"]:
                addresses[instance["InstanceId"]] = instance.get("PublicIpAddress")
    moto.clear_calls()
    return ids, addresses


def base_config(**extra) -> dict:
    config = {
        "plugin": "oceanid.fleet.fleet",
        "static": STATIC,
        "ec2": [{"name": "fleet_ec2", "regions": REGIONS, "tags": {"fleet:managed": "true"}}],
    }
    config.update(extra)
    return config


def test_three_regions_and_static_hosts_make_one_inventory(fleet, write_config, inventory, moto):
    ids, addresses = fleet
    path = write_config(base_config())
    moto.clear_calls()
    result = inventory(path)
    assert result.rc == 0, result.stderr
    data = result.json()
    hostvars = data["_meta"]["hostvars"]

    expected = {"tethys", "calypso", "seaweed1", "gpu-a", "gpu-b", "cpu-agent", "evil", "p4", "g4", ids["gpu-a-west"]}
    assert set(hostvars) == expected
    # one DescribeInstances per region, each in its own region (the proxy saw the signatures)
    assert sorted(c.region for c in moto.calls_of("DescribeInstances")) == sorted(REGIONS)

    groups = groups_of(data)
    assert groups["k3s_servers"] == {"tethys"}
    assert groups["storage_nodes"] == {"seaweed1"}
    assert groups["k3s_agents"] == {"gpu-b", "cpu-agent", "evil"}
    assert groups["gpu_hosts"] == {"calypso", "gpu-a", "gpu-b", "evil", "p4", "g4", ids["gpu-a-west"]}
    assert groups["fleet_ec2"] == expected - {"tethys", "calypso"}
    assert groups["fleet_ec2_eu_west_1"] == {"p4", ids["gpu-a-west"]}
    assert groups["fleet_ec2_ap_southeast_2"] == {"g4"}

    gpu_a = plain(hostvars["gpu-a"])
    assert gpu_a["ansible_host"] == addresses[ids["gpu-a"]]
    assert gpu_a["ec2_instance_id"] == ids["gpu-a"]
    assert gpu_a["ec2_region"] == "us-east-1"
    assert gpu_a["ec2_lifecycle"] == "on-demand"
    assert gpu_a["ec2_tags"]["fleet:role"] == "gpu_hosts"
    assert gpu_a["fleet_gpu"] == {
        "vendor": "nvidia",
        "model": "L4",
        "count": 1,
        "memory_mib": 22888,
        "memory_gib": 22.4,
        "total_memory_mib": 22888,
    }
    assert gpu_a["fleet_sources"] == ["fleet_ec2"]
    assert plain(hostvars["p4"])["fleet_gpu"]["model"] == "A100" and plain(hostvars["p4"])["fleet_gpu"]["count"] == 8
    assert plain(hostvars["g4"])["fleet_gpu"]["count"] == 4
    assert "fleet_gpu" not in hostvars["cpu-agent"]
    assert plain(hostvars["calypso"])["fleet_gpu"]["model"] == "RTX 4090"

    # present statically and in EC2: one host, groups of both, the static variables win (prefer: static)
    seaweed = plain(hostvars["seaweed1"])
    assert seaweed["ansible_host"] == "seaweed1.example.com"
    assert seaweed["seaweed_role"] == "master"
    assert seaweed["ec2_instance_id"] == ids["seaweed1"]
    assert seaweed["fleet_sources"] == ["static", "fleet_ec2"]
    assert "seaweed1" in groups["fleet_ec2_us_east_1"]

    # two instances named gpu-a: the second is named by its instance ID, with a warning naming both
    assert f"instance {ids['gpu-a-west']} would be named 'gpu-a' like instance {ids['gpu-a']}" in " ".join(
        result.stderr.split()
    )


def test_remote_data_is_never_templated(fleet, write_config, ansible_env):
    """A tag value that is a template stays text (unsafe), in ansible-inventory's output and in a task."""
    path = write_config(base_config())
    listed = run([str(VENV_BIN / "ansible-inventory"), "-i", str(path), "--list"], ansible_env)
    assert json.loads(listed.stdout)["_meta"]["hostvars"]["evil"]["ec2_tags"]["note"] == {"__ansible_unsafe": EVIL}

    task = run(
        [
            str(VENV_BIN / "ansible"),
            "-i",
            str(path),
            "evil",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ ec2_tags.note }}",
        ],
        ansible_env,
    )
    assert task.rc == 0, task.stdout + task.stderr
    assert EVIL in task.stdout
    assert "uid=" not in task.stdout


def test_prefer_ec2_takes_the_instance_variables(fleet, write_config, inventory):
    ids, addresses = fleet
    result = inventory(write_config(base_config(prefer="ec2")))
    assert result.rc == 0, result.stderr
    seaweed = plain(result.json()["_meta"]["hostvars"]["seaweed1"])
    assert seaweed["ansible_host"] == addresses[ids["seaweed1"]]
    assert seaweed["seaweed_role"] == "master"  # static-only variables stay
    assert list(result.json()["_meta"]["hostvars"]).count("seaweed1") == 1


def test_ansible_host_precedence_and_states(fleet, write_config, inventory):
    ids, _addresses = fleet
    config = base_config()
    config["ec2"][0].update(
        ansible_host=["private-ip-address"], states=["running", "stopped"], hostnames=["instance-id"]
    )
    result = inventory(write_config(config))
    assert result.rc == 0, result.stderr
    hostvars = result.json()["_meta"]["hostvars"]
    assert ids["stopped"] in hostvars
    assert plain(hostvars[ids["gpu-a"]])["ansible_host"] == plain(hostvars[ids["gpu-a"]])["ec2_private_ip_address"]
    assert "unmanaged" not in hostvars and ids["unmanaged"] not in hostvars


CONSTRUCTED = {
    "compose": {"fleet_region": "ec2_region | default('on-premises')"},
    "keyed_groups": [{"key": "fleet_gpu.model | default('none')", "prefix": "gpu"}],
    "groups": {"spot": "ec2_lifecycle | default('') == 'spot'", "big_gpu": "fleet_gpu.count | default(0) >= 4"},
}


def test_a_cache_hit_makes_no_api_call_and_keeps_every_group(fleet, write_config, inventory, moto, tmp_path):
    cache = tmp_path / "cache"
    path = write_config(
        base_config(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache), **CONSTRUCTED)
    )
    moto.clear_calls()
    cold = inventory(path)
    assert cold.rc == 0, cold.stderr
    assert moto.count("DescribeInstances") == len(REGIONS)
    assert len(list(cache.iterdir())) == 1

    moto.clear_calls()
    warm = inventory(path)
    assert warm.rc == 0, warm.stderr
    assert moto.count() == 0, [c.action for c in moto.calls]
    assert warm.json() == cold.json()
    groups = groups_of(warm.json())
    assert groups["gpu_L4"] == {"gpu-a", "evil", fleet[0]["gpu-a-west"]}
    assert groups["gpu_none"] == {"tethys", "seaweed1", "cpu-agent"}
    assert groups["big_gpu"] == {"p4", "g4"}
    assert plain(warm.json()["_meta"]["hostvars"]["tethys"])["fleet_region"] == "on-premises"

    # --flush-cache queries again and rewrites the entry
    moto.clear_calls()
    flushed = inventory(path, "--flush-cache")
    assert flushed.rc == 0 and moto.count("DescribeInstances") == len(REGIONS)


def test_editing_the_config_misses_the_cache(fleet, write_config, inventory, moto, tmp_path):
    ids, _addresses = fleet
    cache = tmp_path / "cache"
    config = base_config(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache))
    path = write_config(config)
    assert inventory(path).rc == 0
    moto.clear_calls()
    assert inventory(path).rc == 0 and moto.count() == 0  # cached

    config["ec2"][0]["states"] = ["running", "stopped"]  # an edit
    write_config(config)
    moto.clear_calls()
    edited = inventory(path)
    assert edited.rc == 0, edited.stderr
    assert moto.count("DescribeInstances") == len(REGIONS)  # a miss: the key covers the content
    assert "stopped" in edited.json()["_meta"]["hostvars"]
    moto.clear_calls()
    assert inventory(path).rc == 0 and moto.count() == 0  # and the new content is cached in turn


def test_a_failing_region_is_named_with_its_credential_and_reason(fleet, write_config, inventory, moto, tmp_path):
    moto.fail(
        "DescribeInstances",
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
        status=401,
        region="eu-west-1",
    )
    try:
        path = write_config(base_config())
        failed = inventory(path, env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
        assert failed.rc != 0
        message = " ".join(failed.stderr.split())
        assert "ec2 source 'fleet_ec2', region eu-west-1" in message
        assert "credentials: access key ****ting from environment variables" in message
        assert "AuthFailure: AWS was not able to validate the provided access credentials" in message
        assert "us-east-1" not in message.rsplit("EC2 query failed:", maxsplit=1)[-1]

        # region_errors=warn: the other regions, a warning, and nothing cached
        cache = tmp_path / "cache"
        path = write_config(
            base_config(
                region_errors="warn", cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache)
            ),
            name="warn.fleet.yml",
        )
        partial = inventory(path)
        assert partial.rc == 0, partial.stderr
        assert "p4" not in partial.json()["_meta"]["hostvars"] and "gpu-a" in partial.json()["_meta"]["hostvars"]
        warned = " ".join(partial.stderr.split())
        assert "skipped (region_errors=warn): ec2 source 'fleet_ec2', region eu-west-1" in warned
        assert (
            "region_errors=warn: the inventory has the static hosts (3) and the regions that answered: "
            "'fleet_ec2' us-east-1, ap-southeast-2" in warned
        )
        assert {"tethys", "calypso", "seaweed1"} <= set(partial.json()["_meta"]["hostvars"])
        assert not cache.exists() or not list(cache.iterdir())
    finally:
        moto.faults.clear()


def test_an_unreachable_endpoint_is_named(write_config, inventory):
    config = base_config(timeout=2)
    config["ec2"][0].update(endpoint_url="http://127.0.0.1:9", regions=["us-east-1"])
    failed = inventory(write_config(config), env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    assert failed.rc != 0
    message = " ".join(failed.stderr.split())
    assert "ec2 source 'fleet_ec2', region us-east-1 via http://127.0.0.1:9" in message
    assert "cannot reach the EC2 endpoint" in message


def test_a_bad_config_key_is_an_error_naming_it(write_config, inventory, moto):
    config = base_config(cach=True)
    config["ec2"][0]["regoins"] = config["ec2"][0].pop("regions")
    moto.clear_calls()
    failed = inventory(write_config(config), env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    assert failed.rc != 0
    message = " ".join(failed.stderr.split())
    assert "unknown option 'cach' (did you mean 'cache'?)" in message
    assert "ec2[0] (fleet_ec2): unknown key 'regoins' (did you mean 'regions'?)" in message
    assert "ec2[0] (fleet_ec2).regions is required" in message
    assert moto.count() == 0


def test_the_example_inventory_reads_ec2(fleet, inventory, moto, tmp_path):
    """inventories/example as shipped: static tethys/calypso, the EC2 source in us-east-1, the site's group names."""
    env = {"AWS_ENDPOINT_URL_EC2": moto.url, "HOME": str(tmp_path)}
    result = inventory(Path("inventories/example"), env=env)
    assert result.rc == 0, result.stderr
    data = result.json()
    groups = groups_of(data)
    assert groups["k3s_servers"] == {"tethys"}
    assert {"tethys", "calypso"} <= groups["storage_nodes"]  # the first one becomes SeaweedFS master and filer
    assert {"calypso", "gpu-a", "gpu-b", "evil"} <= groups["gpu_hosts"]
    assert {"gpu-b", "cpu-agent"} <= groups["k3s_agents"]
    assert "p4" not in data["_meta"]["hostvars"]  # eu-west-1 is not in the example
    assert plain(data["_meta"]["hostvars"]["tethys"])["ansible_user"] == "ops"  # group_vars/all
    assert plain(data["_meta"]["hostvars"]["gpu-a"])["ansible_user"] == "ubuntu"  # the source's vars
    assert (tmp_path / ".cache" / "oceanid-fleet" / "inventory").is_dir()


def test_a_static_host_given_by_an_instance_address_is_that_instance(fleet, write_config, inventory):
    ids, addresses = fleet
    by_ip = addresses[ids["gpu-b"]]
    static = {
        **STATIC,
        by_ip: {"groups": ["storage_nodes"]},  # keyed by the instance's public address
        "cpu-box": {"groups": ["storage_nodes"], "vars": {"ansible_host": addresses[ids["cpu-agent"]]}},
    }
    result = inventory(write_config(base_config(static=static)))
    assert result.rc == 0, result.stderr
    hostvars = result.json()["_meta"]["hostvars"]
    assert by_ip in hostvars and "gpu-b" not in hostvars
    assert "cpu-box" in hostvars and "cpu-agent" not in hostvars
    assert plain(hostvars[by_ip])["ec2_instance_id"] == ids["gpu-b"]
    assert plain(hostvars["cpu-box"])["ec2_instance_id"] == ids["cpu-agent"]
    groups = groups_of(result.json())
    assert {by_ip, "cpu-box"} <= groups["storage_nodes"] and {by_ip, "cpu-box"} <= groups["k3s_agents"]
    assert "same address" not in result.stderr


@pytest.fixture
def silent_endpoint():
    """An HTTP endpoint that accepts connections and never answers (a black-holed VPC endpoint, a hung proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_silent_endpoint_fails_in_bounded_time_and_says_how_long_it_waited(write_config, inventory, silent_endpoint):
    config = base_config(timeout=1, attempts=2)
    config["ec2"][0].update(endpoint_url=silent_endpoint, regions=["us-east-1"])
    failed = inventory(write_config(config), env={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"})
    assert failed.rc != 0
    message = " ".join(failed.stderr.split())
    assert f"ec2 source 'fleet_ec2', region us-east-1 via {silent_endpoint}" in message
    assert "did not answer in time" in message
    assert "(2 attempts of up to 1 s each, " in message and "s in all; see the timeout and attempts options)" in message
    assert failed.seconds < 20  # two attempts of 1 s, the back-off between them, ansible's own start-up


def test_with_the_repository_settings_a_failed_inventory_fails_and_says_why_first(write_config, ansible_env, tmp_path):
    """ansible.cfg's [inventory] unparsed_is_failed: a bad fleet.yml fails ansible-inventory and ansible-playbook
    (ansible-core's default is a warning, no host and status 0), and the plugin's own message comes first."""
    path = write_config(base_config(statik={}))
    env = {**ansible_env, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    playbook = tmp_path / "play.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    default = run([str(VENV_BIN / "ansible-inventory"), "-i", str(path), "--list"], ansible_env)
    assert default.rc == 0  # what the settings are for
    for command in (
        [str(VENV_BIN / "ansible-inventory"), "-i", str(path), "--list"],
        [str(VENV_BIN / "ansible-playbook"), "-i", str(path), str(playbook)],
    ):
        failed = run(command, env)
        assert failed.rc != 0, failed.stdout + failed.stderr
        first = failed.stderr.strip().splitlines()[0]
        assert f"{path}: invalid configuration:" in first, failed.stderr
        assert "unknown option 'statik' (did you mean 'static'?)" in " ".join(failed.stderr.split())
