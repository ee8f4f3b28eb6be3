# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The GPU table (ec2_gpu_types), the cost arithmetic and price parsing (ec2_costs), and the AWS error texts (ec2_errors)."""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber

from ansible_collections.oceanid.fleet.plugins.module_utils import ec2_costs, ec2_errors
from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_gpu_types import (
    GPU_FAMILIES,
    gpu_facts,
    is_gpu_family,
    validate_extra_types,
)
from ansible_collections.oceanid.fleet.plugins.modules import ec2_gpu_prices_info

REPO = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    "instance_type,model,count,memory_mib",
    [
        ("g4dn.xlarge", "T4", 1, 16384),
        ("g4dn.12xlarge", "T4", 4, 16384),
        ("g4dn.metal", "T4", 8, 16384),
        ("g5.xlarge", "A10G", 1, 22888),
        ("g5.48xlarge", "A10G", 8, 22888),
        ("g6.xlarge", "L4", 1, 22888),
        ("g6.12xlarge", "L4", 4, 22888),
        ("g6.16xlarge", "L4", 1, 22888),
        ("g6e.xlarge", "L40S", 1, 45776),
        ("g6e.48xlarge", "L40S", 8, 45776),
        ("p4d.24xlarge", "A100", 8, 40960),
        ("p5.48xlarge", "H100", 8, 81920),
        ("p5.4xlarge", "H100", 1, 81920),
    ],
)
def test_gpu_facts_of_the_families(instance_type, model, count, memory_mib):
    facts = gpu_facts(instance_type)
    assert (facts["model"], facts["count"], facts["memory_mib"]) == (model, count, memory_mib)
    assert facts["total_memory_mib"] == count * memory_mib and facts["vendor"] == "nvidia"


@pytest.mark.parametrize("instance_type", ["t3.large", "g6.96xlarge", "g6f.xlarge", "", None, "nonsense"])
def test_no_gpu_facts(instance_type):
    assert gpu_facts(instance_type) is None


def test_the_table_matches_describe_instance_types():
    """moto ships AWS's DescribeInstanceTypes data: every size of our table must agree with it."""
    moto_types = pytest.importorskip("moto.ec2.models.instance_types")
    reference = moto_types.INSTANCE_TYPES
    for family, (model, memory_mib, sizes) in GPU_FAMILIES.items():
        for size, count in sizes.items():
            gpus = reference["%s.%s" % (family, size)]["GpuInfo"]["Gpus"][0]
            assert (gpus["Name"], gpus["Count"], gpus["MemoryInfo"]["SizeInMiB"]) == (model, count, memory_mib), (
                family + "." + size
            )


def test_extra_types_win_and_are_validated():
    assert gpu_facts("g7.xlarge", {"g7.xlarge": {"model": "B200", "count": 1, "memory_mib": 180000}})["model"] == "B200"
    assert is_gpu_family("g6.96xlarge") and not is_gpu_family("t3.large")
    assert validate_extra_types({"x": {"model": "A", "count": 1, "memory_mib": 1, "colour": "red"}}) == [
        "gpu_types.x: unknown key(s) colour; expected model, count, memory_mib"
    ]


PRICES = yaml.safe_load((REPO / "playbooks" / "vars" / "gpu_prices.yml").read_text())["gpu_prices"]


def test_the_shipped_price_table_covers_every_curated_profile():
    profiles = yaml.safe_load((REPO / "playbooks" / "vars" / "gpu_profiles.yml").read_text())["gpu_profiles"]
    for region in ("us-east-1", "us-west-2"):
        for profile in profiles.values():
            assert profile["instance_type"] in PRICES["on_demand"][region]
    datetime.date.fromisoformat(PRICES["as_of"])


@pytest.mark.parametrize(
    "lifecycle,zone,table,expected",
    [
        ("on-demand", "us-east-1a", {}, (0.8048, "on-demand (2025-07-01)")),
        ("spot", "us-east-1a", {}, (0.8048, "on-demand (2025-07-01): no spot price in the table, an upper bound")),
        (
            "spot",
            "us-east-1a",
            {"us-east-1": {"g6.xlarge": {"us-east-1a": 0.31, "us-east-1b": 0.35}}},
            (0.31, "spot us-east-1a (2025-07-01)"),
        ),
        (
            "spot",
            "us-east-1f",
            {"us-east-1": {"g6.xlarge": {"us-east-1a": 0.31, "us-east-1b": 0.35}}},
            (0.35, "spot, highest zone of us-east-1 (2025-07-01)"),
        ),
    ],
)
def test_hourly_price(lifecycle, zone, table, expected):
    prices = dict(PRICES, spot=table)
    assert ec2_costs.hourly_price(prices, "us-east-1", zone, "g6.xlarge", lifecycle) == expected


def test_an_unknown_price_is_said_and_left_out_of_the_total():
    assert ec2_costs.hourly_price(PRICES, "sa-east-1", "sa-east-1a", "g6.xlarge", "on-demand") == (
        None,
        "not in the price table (2025-07-01) for sa-east-1",
    )


def record(**extra):
    base = {
        "instance_id": "i-1",
        "instance_type": "g6.xlarge",
        "region": "us-east-1",
        "availability_zone": "us-east-1a",
        "lifecycle": "on-demand",
        "state": "running",
        "launch_time": "2025-01-01T00:00:00Z",
        "public_ip_address": "54.0.0.1",
        "tags": {"Name": "gpu, the first"},
        "gpu": gpu_facts("g6.xlarge"),
    }
    base.update(extra)
    return base


def test_a_session_row_and_the_csv():
    now = "2025-01-01T10:30:00Z"
    row = ec2_costs.session_row(record(), [{"size": 200, "type": "gp3"}, {"size": 100, "type": "gp2"}], PRICES, now)
    assert row["hours"] == 10.5
    assert row["compute_cost"] == round(0.8048 * 10.5, 4)
    assert row["storage_gib"] == 300 and row["storage_cost"] == round((200 * 0.08 + 100 * 0.10) / 730 * 10.5, 4)
    assert row["public_ipv4"] == 1 and row["public_ipv4_cost"] == round(0.005 * 10.5, 4)
    assert row["total_cost"] == round(0.8048 * 10.5 + (200 * 0.08 + 100 * 0.10) / 730 * 10.5 + 0.0525, 4)
    unpriced = ec2_costs.session_row(
        record(instance_id="i-2", region="sa-east-1", public_ip_address=None), [], PRICES, now
    )
    assert unpriced["total_cost"] is None and unpriced["public_ipv4"] == 0
    total = ec2_costs.totals([row, unpriced])
    assert total["instances"] == 2 and total["unpriced"] == 1 and total["total_cost"] == row["total_cost"]
    parsed = list(csv.DictReader(io.StringIO(ec2_costs.to_csv([row, unpriced], total))))
    assert parsed[0]["name"] == "gpu, the first" and parsed[1]["total_cost"] == ""
    assert parsed[2]["name"] == "TOTAL" and parsed[2]["price_basis"] == "1 without a price"
    assert list(parsed[0]) == ec2_costs.CSV_COLUMNS


def test_times_parse_with_and_without_offsets():
    assert ec2_costs.parse_time("2025-01-01T00:00:00Z") == ec2_costs.parse_time("2025-01-01T01:00:00+01:00")
    assert ec2_costs.parse_time("2025-01-01T00:00:00").tzinfo is not None


# A product as the Price List Query API returns it (trimmed): one JSON string per product in PriceList.
PRODUCT = {
    "product": {
        "productFamily": "Compute Instance",
        "sku": "ABC",
        "attributes": {
            "instanceType": "g6.xlarge",
            "regionCode": "us-east-1",
            "operatingSystem": "Linux",
            "tenancy": "Shared",
        },
    },
    "serviceCode": "AmazonEC2",
    "terms": {
        "OnDemand": {
            "ABC.JRTCKXETXF": {
                "priceDimensions": {
                    "ABC.JRTCKXETXF.6YS6EN2CT7": {
                        "unit": "Hrs",
                        "pricePerUnit": {"USD": "0.8048000000"},
                        "description": "$0.8048 per On Demand Linux g6.xlarge Instance Hour",
                    }
                },
                "sku": "ABC",
                "effectiveDate": "2025-06-01T00:00:00Z",
                "offerTermCode": "JRTCKXETXF",
            }
        }
    },
}


def test_on_demand_price_from_the_pricing_api_answer():
    assert ec2_costs.on_demand_price([json.dumps(PRODUCT)]) == 0.8048
    assert ec2_costs.on_demand_price([]) is None


def test_the_prices_module_reads_the_pricing_api_and_spot_history():
    pricing = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    now = datetime.datetime(2025, 7, 1, tzinfo=datetime.UTC)
    with Stubber(pricing) as stub_pricing, Stubber(ec2) as stub_ec2:
        stub_pricing.add_response(
            "get_products",
            {"PriceList": [json.dumps(PRODUCT)], "FormatVersion": "aws_v1"},
            {
                "ServiceCode": "AmazonEC2",
                "Filters": [
                    {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "g6.xlarge"},
                    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
                    {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
                    {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
                    {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
                    {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
                    {"Type": "TERM_MATCH", "Field": "licenseModel", "Value": "No License required"},
                ],
            },
        )
        stub_pricing.add_response("get_products", {"PriceList": []}, None)
        table, missing = ec2_gpu_prices_info.on_demand_prices(pricing, ["us-east-1"], ["g6.xlarge", "g9.huge"])
        assert table == {"us-east-1": {"g6.xlarge": 0.8048}} and missing == ["us-east-1/g9.huge"]

        stub_ec2.add_response(
            "describe_spot_price_history",
            {
                "SpotPriceHistory": [
                    {
                        "InstanceType": "g6.xlarge",
                        "AvailabilityZone": "us-east-1a",
                        "SpotPrice": "0.3100",
                        "Timestamp": now,
                    },
                    {
                        "InstanceType": "g6.xlarge",
                        "AvailabilityZone": "us-east-1a",
                        "SpotPrice": "0.2900",
                        "Timestamp": now - datetime.timedelta(hours=1),
                    },
                    {
                        "InstanceType": "g6.xlarge",
                        "AvailabilityZone": "us-east-1b",
                        "SpotPrice": "0.3500",
                        "Timestamp": now,
                    },
                ]
            },
            None,
        )
        assert ec2_gpu_prices_info.spot_prices(ec2, ["g6.xlarge"], now) == {
            "g6.xlarge": {"us-east-1a": 0.31, "us-east-1b": 0.35}
        }


def test_error_texts_name_the_credential_but_never_the_secret():
    session = type(
        "S",
        (),
        {"get_credentials": lambda self: Credentials("AKIAABCDEFGH1234", "s3cr3t", method="shared-credentials-file")},
    )()
    text = ec2_errors.describe_credentials(session, "prod")
    assert text == "access key ****1234 from the shared credentials file (profile 'prod')" and "s3cr3t" not in text
    empty = type("S", (), {"get_credentials": lambda self: None})()
    assert (
        ec2_errors.describe_credentials(empty)
        == "no credentials found (no profile set, environment, shared files, instance role)"
    )
    assert ec2_errors.error_reason(
        ClientError({"Error": {"Code": "ExpiredToken", "Message": "The token has expired"}}, "X")
    ) == ("ExpiredToken: The token has expired (the session token has expired; renew it)")
    assert ec2_errors.error_reason(NoCredentialsError()).startswith("no AWS credentials found")
