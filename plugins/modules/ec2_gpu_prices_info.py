#!/usr/bin/python
# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: ec2_gpu_prices_info
short_description: Read current EC2 GPU prices from the AWS Pricing API and the spot price history
version_added: 0.1.0
description:
  - Reads the on-demand hourly price (Linux, shared tenancy, no pre-installed software) of each instance type in
    O(instance_types) in each region of O(regions) from the AWS Price List Query API (C(pricing:GetProducts)), and,
    with O(spot), the latest spot price of each type in each Availability Zone from the EC2 spot price history
    (C(ec2:DescribeSpotPriceHistory)).
  - Returns them as a price table dated today (RV(prices)), in the shape of the collection's
    C(playbooks/vars/gpu_prices.yml), so that it can be merged over the shipped table (C(combine(recursive=true))) or
    saved in its place. Types without a price are left out and listed in RV(missing).
  - Needs network access to AWS; the gpu_report playbook uses it only when asked to refresh.
extends_documentation_fragment: [amazon.aws.common.modules, amazon.aws.region.modules, amazon.aws.boto3,
  oceanid.fleet.ec2, oceanid.fleet.ec2.info, ansible.builtin.action_common_attributes, oceanid.fleet.action_group]
options:
  instance_types:
    description: The instance types to price.
    type: list
    elements: str
    required: true
  spot:
    description: Also read the spot price history (one call per region).
    type: bool
    default: true
  on_demand:
    description: Read on-demand prices from the Pricing API (one call per type and region).
    type: bool
    default: true
  pricing_region:
    description: The region of the Pricing API endpoint (it exists in V(us-east-1), V(eu-central-1) and V(ap-south-1)).
    type: str
    default: us-east-1
  pricing_endpoint_url:
    description: Talk to this Pricing API endpoint instead of AWS's own. O(endpoint_url) applies to the EC2 calls only.
    type: str
seealso:
  - name: AWS Price List Query API
    description: GetProducts and the product attributes used as filters.
    link: https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-price-list-query-api.html
  - module: oceanid.fleet.ec2_gpu_info
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Today's prices of the curated GPU types
  oceanid.fleet.ec2_gpu_prices_info:
    regions: [us-east-1, us-west-2]
    instance_types: [g6.xlarge, g6.2xlarge, g6.4xlarge, g6.12xlarge]
  register: fresh

- name: Use them over the shipped table
  ansible.builtin.set_fact:
    gpu_report_prices: "{{ gpu_prices | combine(fresh.prices, recursive=true) }}"
"""

RETURN = r"""
prices:
  description: A price table with C(as_of) (today, UTC), C(source), C(on_demand) and C(spot) as found.
  returned: always
  type: dict
  sample:
    as_of: "2025-07-01"
    source: AWS Price List Query API and EC2 spot price history
    on_demand: {us-east-1: {g6.xlarge: 0.8048}}
    spot: {us-east-1: {g6.xlarge: {us-east-1a: 0.3612}}}
missing:
  description: C(<region>/<type>) pairs without an on-demand price.
  returned: always
  type: list
  elements: str
"""

import datetime

from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.oceanid.fleet.plugins.module_utils import _ec2_client, ec2_costs, ec2_errors

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # reported by AnsibleAWSModule

PRODUCT_FILTERS = (
    ("operatingSystem", "Linux"),
    ("tenancy", "Shared"),
    ("preInstalledSw", "NA"),
    ("capacitystatus", "Used"),
    ("licenseModel", "No License required"),
)


def on_demand_prices(pricing, regions, instance_types):
    table, missing = {}, []
    for region in regions:
        for instance_type in instance_types:
            filters = [
                {"Type": "TERM_MATCH", "Field": "instanceType", "Value": instance_type},
                {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            ]
            filters.extend({"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in PRODUCT_FILTERS)
            answer = paginated_query_with_retries(
                pricing, "get_products", _ec2_client.READ_RETRY, ServiceCode="AmazonEC2", Filters=filters
            )
            price = ec2_costs.on_demand_price(answer.get("PriceList", []))
            if price is None:
                missing.append("%s/%s" % (region, instance_type))
            else:
                table.setdefault(region, {})[instance_type] = price
    return table, missing


def spot_prices(ec2, instance_types, now):
    answer = paginated_query_with_retries(
        ec2,
        "describe_spot_price_history",
        _ec2_client.READ_RETRY,
        InstanceTypes=instance_types,
        ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
        StartTime=now,
    )
    return ec2_costs.latest_spot_prices(answer.get("SpotPriceHistory", []))


def main():
    argument_spec = dict(_ec2_client.TIMEOUT_ARGUMENT_SPEC)
    argument_spec.update(
        regions={"type": "list", "elements": "str", "default": []},
        instance_types={"type": "list", "elements": "str", "required": True},
        spot={"type": "bool", "default": True},
        on_demand={"type": "bool", "default": True},
        pricing_region={"type": "str", "default": "us-east-1"},
        pricing_endpoint_url={"type": "str"},
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    now = datetime.datetime.now(datetime.timezone.utc)
    regions = p["regions"] or ([p["region"]] if p["region"] else [])
    if not regions:
        module.fail_json(msg="no region: set regions or region")
    prices = {
        "as_of": now.strftime("%Y-%m-%d"),
        "source": "AWS Price List Query API and EC2 spot price history",
        "on_demand": {},
        "spot": {},
    }
    missing = []
    config = _ec2_client.client_config(p["api_timeout"])
    step = "pricing:GetProducts in %s" % p["pricing_region"]
    try:
        if p["on_demand"]:
            # the Pricing API's own endpoint: endpoint_url is EC2's
            pricing = module.client(
                "pricing", region=p["pricing_region"], endpoint=p["pricing_endpoint_url"], config=config
            )
            prices["on_demand"], missing = on_demand_prices(pricing, regions, p["instance_types"])
        if p["spot"]:
            for region in regions:
                step = "ec2:DescribeSpotPriceHistory in %s" % region
                found = spot_prices(module.client("ec2", region=region, config=config), p["instance_types"], now)
                if found:
                    prices["spot"][region] = found
    except (BotoCoreError, ClientError) as exc:
        msg = "%s failed (credentials: %s)" % (step, ec2_errors.module_credentials(module))
        module.fail_json_aws(exc, msg=ec2_errors.explain(msg, exc))
    module.exit_json(changed=False, prices=prices, missing=missing)


if __name__ == "__main__":
    main()
