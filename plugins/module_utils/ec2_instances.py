# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the fleet keeps of an EC2 instance: the fields of a DescribeInstances answer as plain JSON-safe values.

The ``ec2_gpu_*`` modules return these records and the ``oceanid.fleet.fleet`` inventory turns them into host
variables (``ec2_<field>``). No AWS call here.
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict


def iso_time(value):
    """A datetime from botocore as an ISO 8601 UTC string (``2025-01-31T12:00:00Z``); strings pass through."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_record(instance, region):
    """The fields of one DescribeInstances instance that the fleet uses, as plain JSON-safe values."""
    placement = instance.get("Placement") or {}
    state = instance.get("State") or {}
    ipv6 = None
    for interface in instance.get("NetworkInterfaces") or []:
        for address in interface.get("Ipv6Addresses") or []:
            ipv6 = address.get("Ipv6Address")
            break
        if ipv6:
            break
    profile = instance.get("IamInstanceProfile") or {}
    return {
        "instance_id": instance.get("InstanceId"),
        "instance_type": instance.get("InstanceType"),
        "region": region,
        "availability_zone": placement.get("AvailabilityZone"),
        "state": state.get("Name"),
        "lifecycle": instance.get("InstanceLifecycle") or "on-demand",
        "launch_time": iso_time(instance.get("LaunchTime")),
        "private_ip_address": instance.get("PrivateIpAddress"),
        "public_ip_address": instance.get("PublicIpAddress"),
        "private_dns_name": instance.get("PrivateDnsName") or None,
        "public_dns_name": instance.get("PublicDnsName") or None,
        "ipv6_address": ipv6,
        "subnet_id": instance.get("SubnetId"),
        "vpc_id": instance.get("VpcId"),
        "image_id": instance.get("ImageId"),
        "key_name": instance.get("KeyName"),
        "architecture": instance.get("Architecture"),
        "security_group_ids": [g.get("GroupId") for g in instance.get("SecurityGroups") or []],
        "iam_instance_profile_arn": profile.get("Arn"),
        "tags": boto3_tag_list_to_ansible_dict(instance.get("Tags") or []),
    }
