# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cost estimates of EC2 GPU sessions from a dated price table, and the price table's refresh from AWS answers.

Pure functions (no AWS call), so that they are unit-tested on their own; the ``ec2_gpu_info`` and
``ec2_gpu_prices_info`` modules use them.

A price table (``playbooks/vars/gpu_prices.yml`` ships one) is a mapping::

    as_of: "2025-07-01"          # the date the prices were read
    currency: USD
    hours_per_month: 730         # to turn a monthly EBS rate into an hourly one
    ebs_gb_month: {gp3: 0.08}    # per volume type
    public_ipv4_hour: 0.005
    on_demand: {<region>: {<instance type>: <USD per hour>}}
    spot: {<region>: {<instance type>: {<availability zone>: <USD per hour>}}}
"""

import csv
import datetime
import io
import json

CSV_COLUMNS = [
    "name",
    "instance_id",
    "region",
    "availability_zone",
    "instance_type",
    "gpu_model",
    "gpu_count",
    "lifecycle",
    "state",
    "launch_time",
    "hours",
    "hourly_price",
    "price_basis",
    "compute_cost",
    "storage_gib",
    "storage_cost",
    "public_ipv4",
    "public_ipv4_cost",
    "total_cost",
]


def parse_time(value):
    """ISO 8601 (``2025-01-31T12:00:00Z``, with or without offset) to an aware UTC datetime."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def hourly_price(prices, region, availability_zone, instance_type, lifecycle):
    """(USD per hour or None, basis): the price the table gives for this instance, and where it comes from."""
    as_of = prices.get("as_of", "undated")
    if lifecycle == "spot":
        by_zone = ((prices.get("spot") or {}).get(region) or {}).get(instance_type) or {}
        if availability_zone in by_zone:
            return float(by_zone[availability_zone]), "spot %s (%s)" % (availability_zone, as_of)
        if by_zone:
            return max(float(v) for v in by_zone.values()), "spot, highest zone of %s (%s)" % (region, as_of)
    on_demand = ((prices.get("on_demand") or {}).get(region) or {}).get(instance_type)
    if on_demand is None:
        return None, "not in the price table (%s) for %s" % (as_of, region)
    if lifecycle == "spot":
        return float(on_demand), "on-demand (%s): no spot price in the table, an upper bound" % as_of
    return float(on_demand), "on-demand (%s)" % as_of


def session_row(record, volumes, prices, now):
    """One CSV row (a dict of CSV_COLUMNS) for an instance record, its volumes and the table, at ``now``."""
    launched = parse_time(record["launch_time"])
    hours = max(0.0, (parse_time(now) - launched).total_seconds() / 3600.0)
    price, basis = hourly_price(
        prices,
        record["region"],
        record.get("availability_zone"),
        record["instance_type"],
        record.get("lifecycle") or "on-demand",
    )
    per_month = float(prices.get("hours_per_month") or 730)
    rates = prices.get("ebs_gb_month") or {}
    storage_gib = 0
    storage_hourly = 0.0
    for volume in volumes:
        size = int(volume.get("size") or 0)
        storage_gib += size
        storage_hourly += size * float(rates.get(volume.get("type"), rates.get("gp3", 0.0))) / per_month
    ipv4 = 1 if record.get("public_ip_address") else 0
    ipv4_hourly = ipv4 * float(prices.get("public_ipv4_hour") or 0.0)
    compute = None if price is None else price * hours
    storage = storage_hourly * hours
    ipv4_cost = ipv4_hourly * hours
    gpu = record.get("gpu") or {}
    return {
        "name": (record.get("tags") or {}).get("Name", ""),
        "instance_id": record["instance_id"],
        "region": record["region"],
        "availability_zone": record.get("availability_zone") or "",
        "instance_type": record["instance_type"],
        "gpu_model": gpu.get("model", ""),
        "gpu_count": gpu.get("count", 0),
        "lifecycle": record.get("lifecycle") or "on-demand",
        "state": record.get("state") or "",
        "launch_time": launched.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hours": round(hours, 2),
        "hourly_price": price,
        "price_basis": basis,
        "compute_cost": None if compute is None else round(compute, 4),
        "storage_gib": storage_gib,
        "storage_cost": round(storage, 4),
        "public_ipv4": ipv4,
        "public_ipv4_cost": round(ipv4_cost, 4),
        "total_cost": None if compute is None else round(compute + storage + ipv4_cost, 4),
    }


def totals(rows):
    """Sums over rows; ``total_cost`` leaves out rows without a price and says how many (``unpriced``)."""
    result = {
        "instances": len(rows),
        "hours": 0.0,
        "compute_cost": 0.0,
        "storage_cost": 0.0,
        "public_ipv4_cost": 0.0,
        "total_cost": 0.0,
        "unpriced": 0,
    }
    for row in rows:
        result["hours"] += row["hours"]
        result["storage_cost"] += row["storage_cost"]
        result["public_ipv4_cost"] += row["public_ipv4_cost"]
        if row["total_cost"] is None:
            result["unpriced"] += 1
        else:
            result["compute_cost"] += row["compute_cost"]
            result["total_cost"] += row["total_cost"]
    for key in ("hours", "compute_cost", "storage_cost", "public_ipv4_cost", "total_cost"):
        result[key] = round(result[key], 4)
    return result


def to_csv(rows, total):
    """The rows as CSV text (header first), with a final TOTAL row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in CSV_COLUMNS})
    summary = dict.fromkeys(CSV_COLUMNS, "")
    summary.update(
        name="TOTAL",
        instance_id="%d instances" % total["instances"],
        hours=total["hours"],
        compute_cost=total["compute_cost"],
        storage_cost=total["storage_cost"],
        public_ipv4_cost=total["public_ipv4_cost"],
        total_cost=total["total_cost"],
        price_basis="%d without a price" % total["unpriced"] if total["unpriced"] else "",
    )
    writer.writerow(summary)
    return buffer.getvalue()


def on_demand_price(price_list):
    """The hourly USD price in a Pricing API GetProducts answer (its ``PriceList`` of JSON strings), or None.

    Products that are not plain hourly on-demand Linux compute (reservations, per-GB items) are skipped. When several
    products remain, the lowest positive price wins (AWS lists the same SKU once per term).
    """
    found = []
    for item in price_list or []:
        product = json.loads(item) if isinstance(item, str) else item
        for term in ((product.get("terms") or {}).get("OnDemand") or {}).values():
            for dimension in (term.get("priceDimensions") or {}).values():
                if dimension.get("unit") not in ("Hrs", "Hours"):
                    continue
                usd = (dimension.get("pricePerUnit") or {}).get("USD")
                try:
                    value = float(usd)
                except (TypeError, ValueError):
                    continue
                if value > 0:
                    found.append(value)
    return min(found) if found else None


def latest_spot_prices(history):
    """DescribeSpotPriceHistory entries to ``{instance type: {zone: USD per hour}}``, the newest per zone."""
    newest = {}
    for entry in history or []:
        key = (entry["InstanceType"], entry["AvailabilityZone"])
        stamp = entry.get("Timestamp")
        stamp = parse_time(stamp) if stamp is not None else None
        if key not in newest or (stamp is not None and newest[key][0] is not None and stamp > newest[key][0]):
            newest[key] = (stamp, float(entry["SpotPrice"]))
    result = {}
    for (instance_type, zone), (_stamp, price) in sorted(newest.items()):
        result.setdefault(instance_type, {})[zone] = price
    return result
