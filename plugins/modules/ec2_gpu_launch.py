#!/usr/bin/python
# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: ec2_gpu_launch
short_description: Launch one EC2 GPU instance, on-demand or spot, trying sibling subnets on capacity errors
version_added: 0.1.0
description:
  - Launches one named EC2 instance (the C(Name) tag is its identity) from the settings of a GPU profile, as an
    on-demand or a spot instance.
  - Tries the subnets of O(subnets) in order. When AWS answers one of O(fallback_on) (by default
    C(InsufficientInstanceCapacity), AWS having no capacity for the type in that Availability Zone, and C(Unsupported),
    the type not being offered there), the next subnet is tried at once; any other error stops with that error.
    Every attempt is reported in RV(attempts), and in the failure message when no subnet had capacity.
  - RunInstances is sent once per subnet. boto3 would retry a capacity error (AWS answers it with HTTP 500)
    several times before giving up; this module does not, and sends it again only after throttling
    (C(RequestLimitExceeded)) or an AWS-side failure (C(InternalError), C(Unavailable)), with the same client token.
  - Idempotent by name. When an instance with that C(Name) tag is pending, running, stopping or stopped in the region,
    nothing is launched and that instance is returned (a stopped one is not started). Two or more such instances are an
    error.
  - The instance is tagged with O(tags), C(Name) and C(fleet:managed=true), so that the C(oceanid.fleet.fleet)
    inventory finds it (its C(fleet:role) tag, when given in O(tags), decides its groups).
extends_documentation_fragment: [amazon.aws.common.modules, amazon.aws.region.modules, amazon.aws.boto3,
  oceanid.fleet.ec2, ansible.builtin.action_common_attributes, oceanid.fleet.action_group]
options:
  name:
    description: The instance's C(Name) tag, and the key that makes the module idempotent.
    type: str
    required: true
  instance_type:
    description: The instance type, for example V(g6.xlarge).
    type: str
    required: true
  image_id:
    description: The AMI to launch, for example an AWS Deep Learning AMI.
    type: str
    required: true
  subnets:
    description:
      - The subnets to try, in order; siblings in one VPC, usually one per Availability Zone.
      - All must exist; the module checks them first (one DescribeSubnets call) and reports each one's zone.
    type: list
    elements: str
    required: true
  security_groups:
    description: Security group IDs for the instance (of the subnets' VPC).
    type: list
    elements: str
    default: []
  key_name:
    description: The EC2 key pair for SSH.
    type: str
  instance_profile:
    description: The IAM instance profile, by name or ARN.
    type: str
  root_volume:
    description: The root volume.
    type: dict
    suboptions:
      size:
        description: Size in GiB.
        type: int
        required: true
      type:
        description: EBS volume type.
        type: str
        default: gp3
        choices: [gp2, gp3, io1, io2, st1, sc1, standard]
      iops:
        description: Provisioned IOPS (gp3, io1, io2).
        type: int
      throughput:
        description: Throughput in MiB/s (gp3).
        type: int
      device_name:
        description: The root device name; by default the AMI's (one DescribeImages call).
        type: str
      encrypted:
        description: Encrypt the volume (with the account's default EBS key).
        type: bool
  market:
    description: V(on-demand) or V(spot) (a one-time spot request that terminates on interruption).
    type: str
    choices: [on-demand, spot]
    default: on-demand
  spot_max_price:
    description: The highest hourly price to pay for a spot instance, in USD; by default the on-demand price.
    type: str
  public_ip:
    description:
      - Whether the instance gets a public IPv4 address. By default the subnet's setting decides.
      - Public IPv4 addresses are billed per hour (see the gpu_report playbook).
    type: bool
  user_data:
    description: User data (cloud-init), as text.
    type: str
  tags:
    description: More tags for the instance and its volumes, for example C(fleet:role) and C(fleet:profile).
    type: dict
    default: {}
  fallback_on:
    description: Error codes after which the next subnet is tried.
    type: list
    elements: str
    default: [InsufficientInstanceCapacity, Unsupported]
  wait:
    description: Wait until the instance is running (and has its addresses).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for O(wait).
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    details:
      - Looks up the instance and the subnets, and sends RunInstances with C(DryRun) for the first subnet, which checks
        permissions, AMI, key, security groups and instance profile without launching. Capacity cannot be checked
        without launching.
  diff_mode:
    support: full
    details:
      - Before and after state of the named instance.
seealso:
  - name: Insufficient instance capacity
    description: What AWS recommends when a zone has no capacity for a type.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html#troubleshooting-launch-capacity
  - module: oceanid.fleet.ec2_gpu_info
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Launch a spot g6.xlarge, trying three zones in turn
  oceanid.fleet.ec2_gpu_launch:
    region: us-east-1
    name: gpu-g6-xlarge-1
    instance_type: g6.xlarge
    image_id: ami-0123456789abcdef0
    subnets: [subnet-0aaa, subnet-0bbb, subnet-0ccc]
    security_groups: [sg-0123]
    key_name: ops
    instance_profile: fleet-gpu
    root_volume: {size: 200, type: gp3}
    market: spot
    tags:
      fleet:role: gpu_hosts
      fleet:profile: g6-xlarge
  register: launch

- name: Show where it landed and what was tried
  ansible.builtin.debug:
    msg: "{{ launch.instance.instance_id }} in {{ launch.instance.availability_zone }} after {{ launch.attempts | length }} attempt(s)"
"""

RETURN = r"""
instance:
  description: The launched (or already existing) instance; empty in check mode when it would be launched.
  returned: always
  type: dict
  contains:
    instance_id:
      description: The instance ID.
      type: str
      sample: i-0123456789abcdef0
    instance_type:
      description: The instance type.
      type: str
      sample: g6.xlarge
    availability_zone:
      description: Where it runs.
      type: str
      sample: us-east-1c
    subnet_id:
      description: Its subnet.
      type: str
    state:
      description: Its state when the module returned.
      type: str
      sample: running
    lifecycle:
      description: V(spot) or V(on-demand).
      type: str
    launch_time:
      description: ISO 8601, UTC.
      type: str
    public_ip_address:
      description: Its public IPv4 address, if any.
      type: str
    private_ip_address:
      description: Its private IPv4 address.
      type: str
    tags:
      description: Its tags.
      type: dict
    gpu:
      description: GPU facts of the instance type (vendor, model, count, memory_mib, memory_gib, total_memory_mib); null when unknown.
      type: dict
attempts:
  description: One element per RunInstances request, in order (empty when nothing was launched).
  returned: always
  type: list
  elements: dict
  contains:
    subnet_id:
      description: The subnet tried.
      type: str
    availability_zone:
      description: Its zone.
      type: str
    result:
      description: V(launched), V(dry-run-ok), or the AWS error code.
      type: str
      sample: InsufficientInstanceCapacity
    message:
      description: AWS's message, for errors.
      type: str
  sample:
    - {subnet_id: subnet-0aaa, availability_zone: us-east-1a, result: InsufficientInstanceCapacity,
       message: "We currently do not have sufficient g6.xlarge capacity..."}
    - {subnet_id: subnet-0bbb, availability_zone: us-east-1b, result: launched, message: ""}
subnets:
  description: The subnets in the order they were to be tried, with their zone and VPC.
  returned: always
  type: list
  elements: dict
"""

import uuid

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list

from ansible_collections.oceanid.fleet.plugins.module_utils import _ec2_client, ec2_capacity, ec2_errors
from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_gpu_types import gpu_facts
from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_instances import instance_record

try:
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError
except ImportError:
    pass  # reported by AnsibleAWSModule

LIVE_STATES = ["pending", "running", "stopping", "stopped"]


class Launcher:
    """The work of the module, kept apart from main() so that unit tests can drive it with a fake client."""

    def __init__(self, module, client, launch_client):
        self.module = module
        self.params = module.params
        self.client = client  # READ_RETRY, for reads and waits
        self.launch_client = launch_client  # LAUNCH_RETRY only: a capacity error must not be sent again
        self.attempts = []
        self._root_device = None

    def fail(self, msg, exc=None):
        if exc is None:
            self.module.fail_json(msg=msg, attempts=self.attempts)
        self.module.fail_json_aws(exc, msg=ec2_errors.explain(msg, exc), attempts=self.attempts)

    def existing(self):
        reservations = self.client.describe_instances(
            Filters=[
                {"Name": "tag:Name", "Values": [self.params["name"]]},
                {"Name": "instance-state-name", "Values": LIVE_STATES},
            ],
            aws_retry=True,
        ).get("Reservations", [])
        return [i for r in reservations for i in r.get("Instances", [])]

    def subnets(self):
        wanted = self.params["subnets"]
        try:
            found = self.client.describe_subnets(SubnetIds=wanted, aws_retry=True).get("Subnets", [])
        except ClientError as exc:
            self.fail("the profile's subnets could not be looked up in %s" % self.params["region"], exc)
        ordered, missing = ec2_capacity.order_subnets(wanted, found)
        if missing:
            self.fail("subnet(s) not found in %s: %s" % (self.params["region"], ", ".join(missing)))
        vpcs = sorted({s["vpc_id"] for s in ordered})
        if len(vpcs) > 1:
            self.module.warn(
                "the subnets are in different VPCs (%s); security groups belong to one VPC" % ", ".join(vpcs)
            )
        return ordered

    def root_device_name(self):
        volume = self.params["root_volume"]
        if volume.get("device_name"):
            return volume["device_name"]
        try:
            images = self.client.describe_images(ImageIds=[self.params["image_id"]], aws_retry=True).get("Images", [])
        except ClientError as exc:
            self.fail("AMI %s could not be looked up in %s" % (self.params["image_id"], self.params["region"]), exc)
        if not images:
            self.fail("AMI %s not found in %s" % (self.params["image_id"], self.params["region"]))
        return images[0].get("RootDeviceName") or "/dev/sda1"

    def request(self, subnet, dry_run=False):
        p = self.params
        tags = dict(p["tags"])
        tags["Name"] = p["name"]
        tags.setdefault("fleet:managed", "true")
        request = {
            "ImageId": p["image_id"],
            "InstanceType": p["instance_type"],
            "MinCount": 1,
            "MaxCount": 1,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": ansible_dict_to_boto3_tag_list(tags)},
                {"ResourceType": "volume", "Tags": ansible_dict_to_boto3_tag_list(tags)},
            ],
            # Same token on a retry of this request (no second instance), new per attempt.
            "ClientToken": ("%s-%s-%s" % (p["name"], subnet["subnet_id"], uuid.uuid4().hex[:12]))[-64:],
        }
        if p["public_ip"] is None:
            request["SubnetId"] = subnet["subnet_id"]
            if p["security_groups"]:
                request["SecurityGroupIds"] = p["security_groups"]
        else:
            interface = {"DeviceIndex": 0, "SubnetId": subnet["subnet_id"], "AssociatePublicIpAddress": p["public_ip"]}
            if p["security_groups"]:
                interface["Groups"] = p["security_groups"]
            request["NetworkInterfaces"] = [interface]
        if p["key_name"]:
            request["KeyName"] = p["key_name"]
        if p["instance_profile"]:
            key = "Arn" if p["instance_profile"].startswith("arn:") else "Name"
            request["IamInstanceProfile"] = {key: p["instance_profile"]}
        if p["root_volume"]:
            volume = p["root_volume"]
            ebs = {"VolumeSize": volume["size"], "VolumeType": volume["type"], "DeleteOnTermination": True}
            for option, field in (("iops", "Iops"), ("throughput", "Throughput"), ("encrypted", "Encrypted")):
                if volume.get(option) is not None:
                    ebs[field] = volume[option]
            request["BlockDeviceMappings"] = [{"DeviceName": self._root_device, "Ebs": ebs}]
        if p["market"] == "spot":
            spot = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
            if p["spot_max_price"]:
                spot["MaxPrice"] = p["spot_max_price"]
            request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot}
        if p["user_data"]:
            request["UserData"] = p["user_data"]
        if dry_run:
            request["DryRun"] = True
        return request

    def run_instances(self, subnet):
        return self.launch_client.run_instances(aws_retry=True, **self.request(subnet))["Instances"][0]

    def dry_run_instances(self, subnet):
        try:
            self.launch_client.run_instances(aws_retry=True, **self.request(subnet, dry_run=True))
        except is_boto3_error_code("DryRunOperation"):
            pass
        return True

    def launch(self, subnets, send, failure):
        """The fallback over ``subnets`` with ``send``; fails with ``failure`` (a format of the attempt) on an error."""
        try:
            return ec2_capacity.try_subnets(subnets, send, self.params["fallback_on"], self.attempts)[1]
        except (BotoCoreError, ClientError) as exc:
            self.fail(failure % self.attempts[-1], exc)
        return None  # not reached

    def wait_running(self, instance_id):
        waiter = self.client.get_waiter("instance_running")
        delay = 5
        try:
            waiter.wait(
                InstanceIds=[instance_id],
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, self.params["wait_timeout"] // delay)},
            )
        except WaiterError as exc:
            self.fail("instance %s did not reach running within %d s" % (instance_id, self.params["wait_timeout"]), exc)
        return self.describe(instance_id)

    def describe(self, instance_id):
        reservations = self.client.describe_instances(InstanceIds=[instance_id], aws_retry=True)["Reservations"]
        return reservations[0]["Instances"][0]

    def run(self):
        p = self.params
        found = self.existing()
        if len(found) > 1:
            self.fail(
                "%d instances are named %s in %s (%s); terminate the extra ones or use another name"
                % (len(found), p["name"], p["region"], ", ".join(i["InstanceId"] for i in found))
            )
        subnets = self.subnets()
        if found:
            record = _result(found[0], p["region"])
            if record["instance_type"] != p["instance_type"]:
                self.module.warn(
                    "%s already exists as a %s, not %s; nothing launched"
                    % (p["name"], record["instance_type"], p["instance_type"])
                )
            return {
                "changed": False,
                "instance": record,
                "attempts": [],
                "subnets": subnets,
                "diff": {"before": _diff_state(record), "after": _diff_state(record)},
            }
        if p["root_volume"]:
            self._root_device = self.root_device_name()
        before = {"name": p["name"], "state": "absent"}
        if self.module.check_mode:
            failure = "check mode: RunInstances with DryRun in subnet %(subnet_id)s was refused"
            if self.launch(subnets[:1], self.dry_run_instances, failure):
                self.attempts[-1]["result"] = "dry-run-ok"
            after = {"name": p["name"], "state": "running", "instance_type": p["instance_type"], "market": p["market"]}
            return {
                "changed": True,
                "instance": {},
                "attempts": self.attempts,
                "subnets": subnets,
                "diff": {"before": before, "after": after},
            }
        failure = "launching %s (%s, %s) in subnet %%(subnet_id)s (%%(availability_zone)s) failed" % (
            p["name"],
            p["instance_type"],
            p["market"],
        )
        instance = self.launch(subnets, self.run_instances, failure)
        if instance is None:
            self.fail(
                "no capacity for %s (%s) in any of the %d subnets tried: %s. "
                "Try another profile, market or region, or later."
                % (p["instance_type"], p["market"], len(self.attempts), ec2_capacity.tried(self.attempts))
            )
        self.attempts[-1].update(result="launched", instance_id=instance["InstanceId"])
        if p["wait"]:
            instance = self.wait_running(instance["InstanceId"])
        record = _result(instance, p["region"])
        return {
            "changed": True,
            "instance": record,
            "attempts": self.attempts,
            "subnets": subnets,
            "diff": {"before": before, "after": _diff_state(record)},
        }


def _result(instance, region):
    record = instance_record(instance, region)
    record["gpu"] = gpu_facts(record["instance_type"])
    return record


def _diff_state(record):
    return {
        "name": record["tags"].get("Name"),
        "state": record["state"],
        "instance_id": record["instance_id"],
        "instance_type": record["instance_type"],
        "availability_zone": record["availability_zone"],
        "lifecycle": record["lifecycle"],
    }


def main():
    argument_spec = dict(_ec2_client.TIMEOUT_ARGUMENT_SPEC)
    argument_spec.update(
        name={"type": "str", "required": True},
        instance_type={"type": "str", "required": True},
        image_id={"type": "str", "required": True},
        subnets={"type": "list", "elements": "str", "required": True},
        security_groups={"type": "list", "elements": "str", "default": []},
        key_name={"type": "str", "no_log": False},
        instance_profile={"type": "str"},
        root_volume={
            "type": "dict",
            "options": {
                "size": {"type": "int", "required": True},
                "type": {
                    "type": "str",
                    "default": "gp3",
                    "choices": ["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"],
                },
                "iops": {"type": "int"},
                "throughput": {"type": "int"},
                "device_name": {"type": "str"},
                "encrypted": {"type": "bool"},
            },
        },
        market={"type": "str", "default": "on-demand", "choices": ["on-demand", "spot"]},
        spot_max_price={"type": "str"},
        public_ip={"type": "bool"},
        user_data={"type": "str"},
        tags={"type": "dict", "default": {}},
        fallback_on={"type": "list", "elements": "str", "default": list(ec2_capacity.FALLBACK_ON)},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 600},
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    if not module.params["subnets"]:
        module.fail_json(msg="subnets must list at least one subnet")
    if module.params["spot_max_price"] and module.params["market"] != "spot":
        module.fail_json(msg="spot_max_price needs market=spot")

    p = module.params
    client = module.client(
        "ec2", retry_decorator=_ec2_client.READ_RETRY, config=_ec2_client.client_config(p["api_timeout"])
    )
    launch_client = module.client(
        "ec2",
        retry_decorator=_ec2_client.LAUNCH_RETRY,
        config=_ec2_client.client_config(p["api_timeout"], max_attempts=1),
    )
    p["region"] = client.meta.region_name
    try:
        result = Launcher(module, client, launch_client).run()
    except (BotoCoreError, ClientError) as exc:
        msg = "EC2 in %s (credentials: %s)" % (p["region"], ec2_errors.module_credentials(module))
        module.fail_json_aws(exc, msg=ec2_errors.explain(msg, exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
