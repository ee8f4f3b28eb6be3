# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/gpu_launch.yml, gpu_report.yml and gpu_terminate.yml against moto's EC2.

Capacity errors come from the proxy of tests/support/moto_ec2.py: it answers RunInstances in chosen subnets with
InsufficientInstanceCapacity and HTTP 500, as AWS does (boto3 would retry that; the module must not).
moto's instances have no network, so the playbooks run with gpu_wait_for_ssh=false.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import pytest
import yaml

from tests.integration.inventory.fleet_helpers import VENV_BIN, run
from tests.support.moto_ec2 import IMAGE_ID, seed_instances

ICE = (
    "We currently do not have sufficient g6.xlarge capacity in the Availability Zone you requested ({zone}). "
    "Our system will be working on provisioning additional capacity."
)


@pytest.fixture(scope="module")
def site(moto, tmp_path_factory):
    """A site like inventories/example's gpu_launch_site, in moto's us-east-1, plus a fleet inventory over it."""
    moto.reset()
    ec2 = moto.client("ec2", "us-east-1")
    subnets = sorted(
        ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"],
        key=lambda s: s["AvailabilityZone"],
    )[:3]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    ec2.create_key_pair(KeyName="ops")
    moto.client("iam").create_instance_profile(InstanceProfileName="fleet-gpu")
    directory = tmp_path_factory.mktemp("site")
    settings = {
        "gpu_launch_site": {
            "region": "us-east-1",
            "image_id": IMAGE_ID,
            "subnets": [s["SubnetId"] for s in subnets],
            "security_groups": [group],
            "key_name": "ops",
            "instance_profile": "fleet-gpu",
            "tags": {"owner": "ml-team"},
        },
        "fleet_aws_endpoint_url": moto.url,
    }
    (directory / "site.yml").write_text(yaml.safe_dump(settings))
    (directory / "fleet.yml").write_text(
        yaml.safe_dump(
            {
                "plugin": "oceanid.fleet.fleet",
                "static": {"tethys": {"groups": ["k3s_servers"]}},
                "ec2": [
                    {
                        "name": "aws",
                        "regions": ["us-east-1"],
                        "tags": {"fleet:managed": "true"},
                        "endpoint_url": moto.url,
                        "states": ["pending", "running"],
                    }
                ],
            }
        )
    )
    return {"dir": directory, "subnets": [(s["SubnetId"], s["AvailabilityZone"]) for s in subnets]}


@pytest.fixture
def playbook(ansible_env, site):
    """Run one of playbooks/ with the site's settings and the fleet inventory; JSON output parsed."""

    def _playbook(name: str, *args: str, fleet_inventory: bool = False):
        env = {**ansible_env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
        source = str(site["dir"] / "fleet.yml") if fleet_inventory else "localhost,"
        result = run(
            [
                str(VENV_BIN / "ansible-playbook"),
                f"playbooks/{name}",
                "-i",
                source,
                "-e",
                f"@{site['dir'] / 'site.yml'}",
                *args,
            ],
            env,
        )
        try:
            result.data = json.loads(result.stdout)
        except json.JSONDecodeError:
            result.data = {}
        return result

    return _playbook


def task(result, name: str) -> dict:
    """The localhost result of the task with this name (the last one when it ran more than once)."""
    found = [
        t["hosts"]["localhost"]
        for play in result.data.get("plays", [])
        for t in play["tasks"]
        if t["task"]["name"] == name and "localhost" in t["hosts"]
    ]
    assert found, f"no task {name!r} in the output:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    return found[-1]


def run_instances_subnets(moto) -> list[str]:
    return [next(v for k, v in c.params.items() if k.endswith("SubnetId")) for c in moto.calls_of("RunInstances")]


def test_launch_falls_back_through_sibling_subnets_and_the_box_joins_its_groups(site, moto, playbook, inventory):
    (a, zone_a), (b, zone_b), (c, zone_c) = site["subnets"]
    for subnet, zone in ((a, zone_a), (b, zone_b)):
        moto.fail("RunInstances", "InsufficientInstanceCapacity", ICE.format(zone=zone), status=500, SubnetId=subnet)
    moto.clear_calls()
    try:
        result = playbook(
            "gpu_launch.yml",
            "-e",
            "gpu_profile=g6-xlarge",
            "-e",
            "gpu_market=spot",
            "-e",
            "gpu_name=gpu-fallback",
            "-e",
            "gpu_wait_for_ssh=false",
            fleet_inventory=True,
        )
    finally:
        moto.faults.clear()
    assert result.rc == 0, result.stdout[-3000:] + result.stderr
    launch = task(result, "Launch the box, trying the profile's subnets in turn")
    assert launch["changed"] is True
    assert [(x["subnet_id"], x["availability_zone"], x["result"]) for x in launch["attempts"]] == [
        (a, zone_a, "InsufficientInstanceCapacity"),
        (b, zone_b, "InsufficientInstanceCapacity"),
        (c, zone_c, "launched"),
    ]
    assert zone_a in launch["attempts"][0]["message"]
    # one RunInstances per subnet, in the profile's order: the HTTP 500 was not retried
    assert run_instances_subnets(moto) == [a, b, c]
    instance = launch["instance"]
    assert (
        instance["availability_zone"] == zone_c and instance["lifecycle"] == "spot" and instance["state"] == "running"
    )
    assert instance["tags"] == {
        "Name": "gpu-fallback",
        "fleet:managed": "true",
        "fleet:role": "gpu_hosts",
        "fleet:profile": "g6-xlarge",
        "owner": "ml-team",
    }
    assert instance["gpu"]["model"] == "L4"
    reported = [r["msg"] for r in task(result, "Report each attempt")["results"]]
    assert reported[0].startswith(f"{a} ({zone_a}): InsufficientInstanceCapacity - We currently do not have")
    assert reported[2] == f"{c} ({zone_c}): launched"
    assert task(result, "Wait for SSH on the new box")["skipped"] is True
    where = task(result, "Say where the box is in the inventory")["msg"]
    assert "in groups" in where and "gpu_hosts" in where

    listed = inventory(site["dir"] / "fleet.yml")
    hostvars = listed.json()["_meta"]["hostvars"]
    assert "gpu-fallback" in listed.json()["gpu_hosts"]["hosts"]
    assert hostvars["gpu-fallback"]["ec2_lifecycle"] == {"__ansible_unsafe": "spot"}

    # the name is the identity: a second run launches nothing
    moto.clear_calls()
    again = playbook(
        "gpu_launch.yml",
        "-e",
        "gpu_profile=g6-xlarge",
        "-e",
        "gpu_market=spot",
        "-e",
        "gpu_name=gpu-fallback",
        "-e",
        "gpu_wait_for_ssh=false",
    )
    assert again.rc == 0, again.stdout[-3000:]
    assert task(again, "Launch the box, trying the profile's subnets in turn")["changed"] is False
    assert moto.count("RunInstances") == 0


def test_no_capacity_in_any_subnet_fails_and_lists_every_attempt(site, moto, playbook):
    for subnet, zone in site["subnets"]:
        moto.fail("RunInstances", "InsufficientInstanceCapacity", ICE.format(zone=zone), status=500, SubnetId=subnet)
    moto.clear_calls()
    try:
        result = playbook(
            "gpu_launch.yml",
            "-e",
            "gpu_profile=g6-xlarge",
            "-e",
            "gpu_name=gpu-nowhere",
            "-e",
            "gpu_wait_for_ssh=false",
        )
    finally:
        moto.faults.clear()
    assert result.rc != 0
    launch = task(result, "Launch the box, trying the profile's subnets in turn")
    assert launch["failed"] is True
    tried = "; ".join(f"{s} ({z}): InsufficientInstanceCapacity" for s, z in site["subnets"])
    assert launch["msg"] == (
        f"no capacity for g6.xlarge (on-demand) in any of the 3 subnets tried: {tried}. "
        "Try another profile, market or region, or later."
    )
    assert [x["result"] for x in launch["attempts"]] == ["InsufficientInstanceCapacity"] * 3
    assert run_instances_subnets(moto) == [s for s, _z in site["subnets"]]


def test_check_mode_launches_nothing(site, moto, playbook):
    moto.clear_calls()
    result = playbook("gpu_launch.yml", "--check", "-e", "gpu_profile=g6-2xlarge", "-e", "gpu_name=gpu-checked")
    assert result.rc == 0, result.stdout[-3000:]
    launch = task(result, "Launch the box, trying the profile's subnets in turn")
    assert launch["changed"] is True
    assert [x["result"] for x in launch["attempts"]] == ["dry-run-ok"]
    assert [c.params.get("DryRun") for c in moto.calls_of("RunInstances")] == ["true"]
    assert not moto.client("ec2", "us-east-1").describe_instances(
        Filters=[{"Name": "tag:Name", "Values": ["gpu-checked"]}]
    )["Reservations"]


def test_report_writes_the_sessions_csv(moto, playbook, tmp_path):
    ec2 = moto.client("ec2", "eu-west-1")
    spot = ec2.run_instances(
        ImageId=IMAGE_ID,
        MinCount=1,
        MaxCount=1,
        InstanceType="g5.xlarge",
        InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}},
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 200, "VolumeType": "gp3"}}],
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": "report-spot"}, {"Key": "fleet:managed", "Value": "true"}],
            }
        ],
    )["Instances"][0]
    seed_instances(ec2, 1, "g5.2xlarge", {"Name": "report-od", "fleet:managed": "true"})
    seed_instances(ec2, 1, "t3.large", {"Name": "report-cpu", "fleet:managed": "true"})  # no GPU: not in the report
    launched = spot["LaunchTime"].astimezone(datetime.UTC)
    now = (launched + datetime.timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dest = tmp_path / "reports" / "sessions_latest.csv"
    saved = tmp_path / "prices.yml"
    # the table as shipped, with eu-west-1 on-demand prices added (it ships us-east-1 and us-west-2 only)
    table = yaml.safe_load(Path("playbooks/vars/gpu_prices.yml").read_text())["gpu_prices"]
    table["on_demand"]["eu-west-1"] = table["on_demand"]["us-east-1"]

    # a refresh of the spot prices (EC2's spot price history; moto has no Pricing API for the on-demand half)
    result = playbook(
        "gpu_report.yml",
        "-e",
        "gpu_report_regions=eu-west-1",
        "-e",
        f"gpu_report_dest={dest}",
        "-e",
        f"gpu_report_now={now}",
        "-e",
        json.dumps({"gpu_prices": table}),
        "-e",
        "gpu_report_refresh_prices=true",
        "-e",
        "gpu_report_refresh_on_demand=false",
        "-e",
        '{"gpu_report_price_types": ["g5.xlarge"]}',
        "-e",
        f"gpu_report_prices_dest={saved}",
    )
    assert result.rc == 0, result.stdout[-3000:] + result.stderr
    refreshed = yaml.safe_load(saved.read_text())["gpu_prices"]
    assert set(refreshed["spot"]["eu-west-1"]["g5.xlarge"]) == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    assert refreshed["as_of"] == datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    assert refreshed["on_demand"]["us-east-1"]["g6.xlarge"] == 0.8048  # kept from the shipped table

    rows = list(csv.DictReader(io.StringIO(dest.read_text())))
    assert rows[0].keys() >= {
        "launch_time",
        "hours",
        "lifecycle",
        "hourly_price",
        "storage_cost",
        "public_ipv4_cost",
        "total_cost",
    }
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"report-spot", "report-od", "TOTAL"}
    spot_row, od_row, total = by_name["report-spot"], by_name["report-od"], by_name["TOTAL"]
    zone = spot["Placement"]["AvailabilityZone"]
    spot_price = refreshed["spot"]["eu-west-1"]["g5.xlarge"][zone]
    assert spot_row["lifecycle"] == "spot" and spot_row["gpu_model"] == "A10G" and spot_row["hours"] == "10.0"
    assert (
        float(spot_row["hourly_price"]) == spot_price
        and spot_row["price_basis"] == f"spot {zone} ({refreshed['as_of']})"
    )
    assert spot_row["storage_gib"] == "200" and float(spot_row["storage_cost"]) == pytest.approx(
        200 * 0.08 / 730 * 10, abs=1e-4
    )
    assert spot_row["public_ipv4"] == "1" and float(spot_row["public_ipv4_cost"]) == pytest.approx(0.05)
    assert float(spot_row["total_cost"]) == pytest.approx(spot_price * 10 + 200 * 0.08 / 730 * 10 + 0.05, abs=1e-3)
    assert od_row["lifecycle"] == "on-demand" and od_row["hourly_price"] == "1.212"
    assert od_row["price_basis"] == f"on-demand ({refreshed['as_of']})"
    assert float(od_row["compute_cost"]) == pytest.approx(12.12, abs=0.02)
    assert float(total["total_cost"]) == pytest.approx(
        float(spot_row["total_cost"]) + float(od_row["total_cost"]), abs=1e-3
    )
    summary = task(result, "Summarize")["msg"]
    assert summary.startswith("2 GPU instance(s) in eu-west-1") and str(dest) in summary


def test_terminate_only_fleet_boxes(moto, playbook):
    ec2 = moto.client("ec2", "ap-southeast-2")
    doomed = seed_instances(ec2, 1, "g6.xlarge", {"Name": "gpu-doomed", "fleet:managed": "true"})[0]
    stranger = seed_instances(ec2, 1, "g6.xlarge", {"Name": "not-ours"})[0]
    region = ("-e", "gpu_terminate_region=ap-southeast-2")

    def state(instance_id):
        return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]

    checked = playbook("gpu_terminate.yml", "--check", *region, "-e", "gpu_terminate_names=gpu-doomed")
    assert checked.rc == 0, checked.stdout[-3000:]
    assert task(checked, "Say what was terminated")["msg"] == f"would terminate {doomed}"
    assert state(doomed) == "running"

    refused = playbook("gpu_terminate.yml", *region, "-e", f"gpu_terminate_instance_ids={stranger}")
    assert refused.rc != 0
    assert (
        f"not tagged fleet:managed=true, so not terminated: {stranger}"
        in task(refused, "Refuse IDs that are not fleet instances")["msg"]
    )
    assert state(stranger) == "running"

    done = playbook("gpu_terminate.yml", *region, "-e", "gpu_terminate_names=gpu-doomed")
    assert done.rc == 0, done.stdout[-3000:]
    assert task(done, "Terminate them")["changed"] is True
    assert state(doomed) == "terminated"

    again = playbook("gpu_terminate.yml", *region, "-e", "gpu_terminate_names=gpu-doomed")
    assert again.rc == 0
    assert task(again, "Terminate them").get("skipped") is True
    assert task(again, "Say what was terminated")["msg"].startswith("nothing to terminate")
