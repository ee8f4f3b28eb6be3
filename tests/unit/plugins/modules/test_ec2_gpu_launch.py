# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ec2_gpu_launch: the subnet fallback, idempotence, check mode and the request it sends, with fake EC2 clients.

The end-to-end run against moto (through the fault-injecting proxy) is tests/integration/inventory/test_gpu_playbooks.py.
"""

from __future__ import annotations

import datetime
import json
import time
from unittest import mock

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args
from ansible_collections.amazon.aws.plugins.module_utils import modules as aws_modules
from botocore.exceptions import ClientError

from ansible_collections.oceanid.fleet.plugins.modules import ec2_gpu_launch

SUBNETS = {"subnet-a": "us-east-1a", "subnet-b": "us-east-1b", "subnet-c": "us-east-1c"}


def error(code, message="message"):
    return ClientError({"Error": {"Code": code, "Message": message}}, "RunInstances")


class FakeEC2:
    def __init__(self, outcomes=None, existing=(), image_root="/dev/sda1"):
        self.outcomes = dict(outcomes or {})  # subnet -> list of exceptions to raise, in order, before success
        self.existing = list(existing)
        self.image_root = image_root
        self.requests = []
        self.meta = mock.Mock(region_name="us-east-1")

    def describe_instances(self, Filters=None, InstanceIds=None):
        if InstanceIds:
            return {"Reservations": [{"Instances": [self._instance(InstanceIds[0], self.requests[-1])]}]}
        return {"Reservations": [{"Instances": self.existing}]} if self.existing else {"Reservations": []}

    def describe_subnets(self, SubnetIds):
        return {
            "Subnets": [
                {"SubnetId": s, "AvailabilityZone": SUBNETS[s], "VpcId": "vpc-1"} for s in SubnetIds if s in SUBNETS
            ]
        }

    def describe_images(self, ImageIds):
        return {"Images": [{"ImageId": ImageIds[0], "RootDeviceName": self.image_root}]}

    def run_instances(self, **request):
        self.requests.append(request)
        subnet = request.get("SubnetId") or request["NetworkInterfaces"][0]["SubnetId"]
        pending = self.outcomes.get(subnet) or []
        if pending:
            raise pending.pop(0)
        if request.get("DryRun"):
            raise error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
        return {"Instances": [self._instance("i-new", request)]}

    def get_waiter(self, name):
        assert name == "instance_running"
        return mock.Mock()

    @staticmethod
    def _instance(instance_id, request):
        subnet = request.get("SubnetId") or request["NetworkInterfaces"][0]["SubnetId"]
        tags = request["TagSpecifications"][0]["Tags"]
        return {
            "InstanceId": instance_id,
            "InstanceType": request["InstanceType"],
            "Placement": {"AvailabilityZone": SUBNETS[subnet]},
            "SubnetId": subnet,
            "State": {"Name": "running"},
            "LaunchTime": datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
            "PublicIpAddress": "54.0.0.1",
            "PrivateIpAddress": "10.0.0.1",
            "Tags": tags,
            "InstanceLifecycle": "spot" if "InstanceMarketOptions" in request else None,
        }


ARGS = {
    "region": "us-east-1",
    "name": "gpu-1",
    "instance_type": "g6.xlarge",
    "image_id": "ami-1",
    "subnets": ["subnet-a", "subnet-b", "subnet-c"],
    "security_groups": ["sg-1"],
    "key_name": "ops",
    "instance_profile": "fleet-gpu",
    "root_volume": {"size": 200},
    "tags": {"fleet:role": "gpu_hosts"},
}


def run(capsys, client, check_mode=False, **overrides):
    args = dict(ARGS, **overrides)
    args.update(_ansible_check_mode=check_mode, _ansible_diff=True)
    sleeps = []
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        mock.patch.object(aws_modules, "boto3_conn", return_value=client) as connect,
        mock.patch.object(time, "sleep", side_effect=sleeps.append),
        pytest.raises(SystemExit),
    ):
        ec2_gpu_launch.main()
    result = json.loads(capsys.readouterr().out)
    result["_sleeps"] = sleeps
    result["_connections"] = [call.kwargs for call in connect.call_args_list]
    return result


def subnets_tried(client):
    return [r.get("SubnetId") or r["NetworkInterfaces"][0]["SubnetId"] for r in client.requests]


def test_capacity_errors_move_on_to_the_next_subnet(capsys):
    client = FakeEC2(
        {
            "subnet-a": [error("InsufficientInstanceCapacity", "no g6.xlarge in us-east-1a")],
            "subnet-b": [error("Unsupported", "g6.xlarge is not supported in us-east-1b")],
        }
    )
    result = run(capsys, client, market="spot")
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert [(a["subnet_id"], a["availability_zone"], a["result"]) for a in result["attempts"]] == [
        ("subnet-a", "us-east-1a", "InsufficientInstanceCapacity"),
        ("subnet-b", "us-east-1b", "Unsupported"),
        ("subnet-c", "us-east-1c", "launched"),
    ]
    assert result["attempts"][0]["message"] == "no g6.xlarge in us-east-1a"
    assert subnets_tried(client) == ["subnet-a", "subnet-b", "subnet-c"]
    assert result["instance"]["availability_zone"] == "us-east-1c" and result["instance"]["lifecycle"] == "spot"
    assert result["instance"]["gpu"]["model"] == "L4"
    assert result["diff"] == {
        "before": {"name": "gpu-1", "state": "absent"},
        "after": {
            "name": "gpu-1",
            "state": "running",
            "instance_id": "i-new",
            "instance_type": "g6.xlarge",
            "availability_zone": "us-east-1c",
            "lifecycle": "spot",
        },
    }
    tokens = [r["ClientToken"] for r in client.requests]
    assert len(set(tokens)) == 3 and all(len(t) <= 64 for t in tokens)


def test_the_request_carries_the_profile(capsys):
    client = FakeEC2(image_root="/dev/xvda")
    run(
        capsys,
        client,
        market="spot",
        spot_max_price="0.50",
        instance_profile="arn:aws:iam::1:instance-profile/x",
        public_ip=True,
        root_volume={"size": 300, "type": "gp3", "throughput": 250},
    )
    request = client.requests[0]
    assert request["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate",
            "MaxPrice": "0.50",
        },
    }
    assert request["IamInstanceProfile"] == {"Arn": "arn:aws:iam::1:instance-profile/x"}
    assert request["NetworkInterfaces"] == [
        {"DeviceIndex": 0, "SubnetId": "subnet-a", "AssociatePublicIpAddress": True, "Groups": ["sg-1"]}
    ]
    assert "SubnetId" not in request and "SecurityGroupIds" not in request
    assert request["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"VolumeSize": 300, "VolumeType": "gp3", "DeleteOnTermination": True, "Throughput": 250},
        }
    ]
    tags = {t["Key"]: t["Value"] for t in request["TagSpecifications"][0]["Tags"]}
    assert tags == {"Name": "gpu-1", "fleet:managed": "true", "fleet:role": "gpu_hosts"}
    assert request["TagSpecifications"][1]["ResourceType"] == "volume"


def test_no_capacity_anywhere_fails_with_every_attempt(capsys):
    client = FakeEC2({s: [error("InsufficientInstanceCapacity")] for s in SUBNETS})
    result = run(capsys, client)
    assert result["failed"] is True
    assert result["msg"] == (
        "no capacity for g6.xlarge (on-demand) in any of the 3 subnets tried: subnet-a (us-east-1a): InsufficientInstanceCapacity; "
        "subnet-b (us-east-1b): InsufficientInstanceCapacity; subnet-c (us-east-1c): InsufficientInstanceCapacity. "
        "Try another profile, market or region, or later."
    )
    assert len(result["attempts"]) == 3


def test_another_error_stops_at_once_and_says_why(capsys):
    client = FakeEC2(
        {"subnet-a": [error("InvalidGroup.NotFound", "The security group 'sg-1' does not exist in VPC 'vpc-1'")]}
    )
    result = run(capsys, client)
    assert result["failed"] is True
    assert result["msg"] == (
        "launching gpu-1 (g6.xlarge, on-demand) in subnet subnet-a (us-east-1a) failed (a security group does not "
        "exist in this VPC): An error occurred (InvalidGroup.NotFound) when calling the RunInstances operation: "
        "The security group 'sg-1' does not exist in VPC 'vpc-1'"
    )
    assert result["error"] == {
        "code": "InvalidGroup.NotFound",
        "message": "The security group 'sg-1' does not exist in VPC 'vpc-1'",
    }
    assert subnets_tried(client) == ["subnet-a"]


def test_throttling_is_retried_with_a_backoff(capsys):
    client = FakeEC2({"subnet-a": [error("RequestLimitExceeded"), error("RequestLimitExceeded")]})
    result = run(capsys, client)
    assert result["changed"] is True and result["attempts"][0]["result"] == "launched"
    assert subnets_tried(client) == ["subnet-a"] * 3 and result["_sleeps"] == [1.0, 2.0]


def test_an_existing_instance_is_returned_unchanged(capsys):
    existing = FakeEC2._instance(
        "i-old",
        {
            "SubnetId": "subnet-b",
            "InstanceType": "g6.xlarge",
            "TagSpecifications": [{"Tags": [{"Key": "Name", "Value": "gpu-1"}]}],
        },
    )
    client = FakeEC2(existing=[existing])
    result = run(capsys, client)
    assert result["changed"] is False and result["instance"]["instance_id"] == "i-old" and result["attempts"] == []
    assert client.requests == []


def test_two_instances_with_the_name_are_an_error(capsys):
    client = FakeEC2(existing=[{"InstanceId": "i-1"}, {"InstanceId": "i-2"}])
    result = run(capsys, client)
    assert result["failed"] is True and result["msg"].startswith("2 instances are named gpu-1 in us-east-1 (i-1, i-2)")


def test_check_mode_sends_a_dry_run_only(capsys):
    client = FakeEC2()
    result = run(capsys, client, check_mode=True)
    assert result["changed"] is True and result["instance"] == {}
    assert result["attempts"] == [
        {"subnet_id": "subnet-a", "availability_zone": "us-east-1a", "result": "dry-run-ok", "message": ""}
    ]
    assert [r.get("DryRun") for r in client.requests] == [True]


def test_check_mode_reports_a_refused_dry_run(capsys):
    client = FakeEC2({"subnet-a": [error("InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist")]})
    result = run(capsys, client, check_mode=True)
    assert result["failed"] is True
    assert result["msg"].startswith(
        "check mode: RunInstances with DryRun in subnet subnet-a was refused (the AMI does not exist in this region): "
        "An error occurred (InvalidAMIID.NotFound)"
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"subnets": ["subnet-a", "subnet-z"]}, "subnet(s) not found in us-east-1: subnet-z"),
        ({"subnets": []}, "subnets must list at least one subnet"),
        ({"spot_max_price": "1.0"}, "spot_max_price needs market=spot"),
    ],
)
def test_input_errors(capsys, overrides, message):
    result = run(capsys, FakeEC2(), **overrides)
    assert result["failed"] is True and message in result["msg"]


def test_clients_follow_the_timeout_and_the_launch_client_never_retries_in_botocore(capsys):
    result = run(capsys, FakeEC2(), api_timeout=7.5)
    assert not result.get("failed"), result
    reads, launches = result["_connections"]
    assert reads["resource"] == launches["resource"] == "ec2" and reads["region"] == "us-east-1"
    for connection in (reads, launches):
        assert connection["config"].connect_timeout == connection["config"].read_timeout == 7.5
    assert reads["config"].retries == {"total_max_attempts": 3, "mode": "standard"}
    assert launches["config"].retries == {"total_max_attempts": 1, "mode": "standard"}


def test_an_aws_error_names_the_region_and_the_credential_never_the_secret(capsys):
    client = FakeEC2()
    client.describe_instances = mock.Mock(
        side_effect=error("AuthFailure", "AWS was not able to validate the credentials")
    )
    result = run(capsys, client, access_key="AKIAEXAMPLE98765", secret_key="s3cr3t-value")
    del result["_connections"]  # what the test's stand-in for boto3 was given, not the module's output
    assert result["failed"] is True
    assert result["msg"] == (
        "EC2 in us-east-1 (credentials: access key ****8765 from the access_key/secret_key options) "
        "(the credentials were rejected (wrong or deactivated access key)): An error occurred (AuthFailure) when "
        "calling the RunInstances operation: AWS was not able to validate the credentials"
    )
    assert result["error"]["code"] == "AuthFailure" and "s3cr3t-value" not in json.dumps(result)
