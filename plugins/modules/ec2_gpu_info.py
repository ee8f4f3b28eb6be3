#!/usr/bin/python
# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: ec2_gpu_info
short_description: List the fleet's EC2 GPU instances with session time and an estimated cost
version_added: 0.1.0
description:
  - Lists the instances with the tags in O(tags) (by default C(fleet:managed=true)) in O(states) in each region of
    O(regions), keeps those with GPUs (unless O(gpu_only=false)), and gives for each one its launch time, the hours
    since then, its lifecycle (spot or on-demand), and, with a O(prices) table, an estimate of what it cost so far, namely
    compute at the table's hourly price, its EBS volumes at the table's monthly rate per GiB, and its public IPv4
    address at the table's hourly rate.
  - The price basis of each row says where its hourly price came from; a spot instance without a spot price in the
    table is priced at the on-demand price, as an upper bound, and says so.
  - Returns the rows, their totals and the same as CSV text (RV(csv)), which the gpu_report playbook writes to a file.
  - One DescribeInstances call (paginated) and one DescribeVolumes call per 200 instances, per region.
extends_documentation_fragment: [amazon.aws.common.modules, amazon.aws.region.modules, amazon.aws.boto3,
  oceanid.fleet.ec2, oceanid.fleet.ec2.info, ansible.builtin.action_common_attributes, oceanid.fleet.action_group]
options:
  tags:
    description: Only instances with these tags (a value may be a list of alternatives).
    type: dict
    default: {'fleet:managed': 'true'}
  states:
    description: Instance states to list.
    type: list
    elements: str
    default: [pending, running]
  gpu_only:
    description: Keep only instances whose type has GPUs (per the collection's GPU table).
    type: bool
    default: true
  prices:
    description:
      - A price table, as in the collection's C(playbooks/vars/gpu_prices.yml) (C(as_of), C(on_demand), C(spot),
        C(ebs_gb_month), C(public_ipv4_hour), C(hours_per_month)). Without it, costs are empty.
    type: dict
    default: {}
  now:
    description: The moment to compute hours to, in ISO 8601; default is the current time (for reproducible reports).
    type: str
seealso:
  - module: oceanid.fleet.ec2_gpu_prices_info
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Running GPU sessions in two regions, priced from the shipped table
  oceanid.fleet.ec2_gpu_info:
    regions: [us-east-1, eu-west-1]
    prices: "{{ gpu_prices }}"
  register: sessions

- name: Write them as CSV
  ansible.builtin.copy:
    content: "{{ sessions.csv }}"
    dest: /srv/reports/sessions_latest.csv
    mode: "0644"
"""

RETURN = r"""
instances:
  description: One row per instance, ordered by region and launch time.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The C(Name) tag.
      type: str
    instance_id:
      description: The instance ID.
      type: str
    region:
      description: Its region.
      type: str
    availability_zone:
      description: Its zone.
      type: str
    instance_type:
      description: Its type.
      type: str
    gpu_model:
      description: GPU model, empty for an instance without GPUs.
      type: str
    gpu_count:
      description: GPUs per instance.
      type: int
    lifecycle:
      description: V(spot) or V(on-demand).
      type: str
    state:
      description: Its state.
      type: str
    launch_time:
      description: ISO 8601, UTC.
      type: str
    hours:
      description: Hours from launch to O(now).
      type: float
    hourly_price:
      description: USD per hour, or null when the table has no price for it.
      type: float
    price_basis:
      description: Where the hourly price comes from (spot or on-demand, and the table's date).
      type: str
    compute_cost:
      description: RV(instances[].hours) times the hourly price.
      type: float
    storage_gib:
      description: GiB of EBS volumes attached.
      type: int
    storage_cost:
      description: Estimated EBS cost over the hours.
      type: float
    public_ipv4:
      description: Public IPv4 addresses (0 or 1).
      type: int
    public_ipv4_cost:
      description: Estimated public IPv4 cost over the hours.
      type: float
    total_cost:
      description: Compute, storage and IPv4; null when the hourly price is unknown.
      type: float
totals:
  description: Sums over the rows (C(total_cost) leaves out unpriced rows and C(unpriced) counts them).
  returned: always
  type: dict
csv:
  description: The rows as CSV with a header and a final TOTAL row.
  returned: always
  type: str
price_table_as_of:
  description: The date of the price table used.
  returned: always
  type: str
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.oceanid.fleet.plugins.module_utils import _ec2_client, ec2_costs, ec2_errors
from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_gpu_types import gpu_facts
from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_instances import instance_record

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # reported by AnsibleAWSModule


def list_region(client, region, params):
    filters = [{"Name": "instance-state-name", "Values": params["states"]}]
    for key, value in params["tags"].items():
        values = value if isinstance(value, list) else [value]
        filters.append({"Name": "tag:%s" % key, "Values": [str(v) for v in values]})
    records = []
    answer = paginated_query_with_retries(client, "describe_instances", _ec2_client.READ_RETRY, Filters=filters)
    for reservation in answer.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            record = instance_record(instance, region)
            record["gpu"] = gpu_facts(record["instance_type"])
            if record["gpu"] or not params["gpu_only"]:
                records.append(record)
    volumes = {}
    ids = [r["instance_id"] for r in records]
    for start in range(0, len(ids), 200):
        chunk = [{"Name": "attachment.instance-id", "Values": ids[start : start + 200]}]
        answer = paginated_query_with_retries(client, "describe_volumes", _ec2_client.READ_RETRY, Filters=chunk)
        for volume in answer.get("Volumes", []):
            for attachment in volume.get("Attachments", []):
                volumes.setdefault(attachment.get("InstanceId"), []).append(
                    {"size": volume.get("Size"), "type": volume.get("VolumeType")}
                )
    return records, volumes


def main():
    argument_spec = dict(_ec2_client.TIMEOUT_ARGUMENT_SPEC)
    argument_spec.update(
        regions={"type": "list", "elements": "str", "default": []},
        tags={"type": "dict", "default": {"fleet:managed": "true"}},
        states={"type": "list", "elements": "str", "default": ["pending", "running"]},
        gpu_only={"type": "bool", "default": True},
        prices={"type": "dict", "default": {}},
        now={"type": "str"},
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        now = ec2_costs.parse_time(p["now"]) if p["now"] else datetime.datetime.now(datetime.timezone.utc)
    except ValueError as exc:
        module.fail_json(msg="now is not an ISO 8601 time: %s" % exc)
    regions = p["regions"] or ([module.region] if module.region else [])
    if not regions:
        module.fail_json(msg="no region: set regions or region (or AWS_DEFAULT_REGION)")

    rows = []
    config = _ec2_client.client_config(p["api_timeout"])
    for region in regions:
        client = module.client("ec2", region=region, config=config)
        try:
            records, volumes = list_region(client, region, p)
        except (BotoCoreError, ClientError) as exc:
            msg = "listing GPU instances in %s failed (credentials: %s)" % (
                region,
                ec2_errors.module_credentials(module),
            )
            module.fail_json_aws(exc, msg=ec2_errors.explain(msg, exc))
        for record in sorted(records, key=lambda r: (r["launch_time"] or "", r["instance_id"])):
            rows.append(ec2_costs.session_row(record, volumes.get(record["instance_id"], []), p["prices"], now))
    total = ec2_costs.totals(rows)
    module.exit_json(
        changed=False,
        instances=rows,
        totals=total,
        csv=ec2_costs.to_csv(rows, total),
        price_table_as_of=str(p["prices"].get("as_of", "")),
    )


if __name__ == "__main__":
    main()
