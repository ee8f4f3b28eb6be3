# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sibling-subnet fallback of ``ec2_gpu_launch``: try subnets in order, moving on after a capacity error.

AWS may have no capacity for an instance type in one Availability Zone (``InsufficientInstanceCapacity``) or not
offer it there (``Unsupported``) while a sibling subnet in another zone has it. ``try_subnets`` sends one request
per subnet, in order, and records each attempt; any other error stops at once. No AWS client here: the caller
passes the request as a function, so that the fallback is tested on its own.
"""

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # the modules report a missing boto3 through AnsibleAWSModule

# The error codes after which the next subnet is tried (ec2_gpu_launch's fallback_on default).
FALLBACK_ON = ["InsufficientInstanceCapacity", "Unsupported"]


def order_subnets(wanted, found):
    """``(subnets, missing)``: DescribeSubnets' ``found`` in the order of ``wanted`` (IDs), and the IDs not found.

    Each subnet is ``{subnet_id, availability_zone, vpc_id}``.
    """
    by_id = {s["SubnetId"]: s for s in found}
    missing = [s for s in wanted if s not in by_id]
    ordered = [
        {"subnet_id": s, "availability_zone": by_id[s].get("AvailabilityZone"), "vpc_id": by_id[s].get("VpcId")}
        for s in wanted
        if s in by_id
    ]
    return ordered, missing


def try_subnets(subnets, send, fallback_on, attempts):
    """``send(subnet)`` for each subnet in turn until one answers; ``(subnet, answer)``, or ``(None, None)``.

    Every request is recorded in ``attempts`` as ``{subnet_id, availability_zone, result, message}``; the caller
    sets ``result`` of the one that answered. A ClientError with a code of ``fallback_on`` moves on to the next
    subnet; any other error is recorded and raised. ``(None, None)``: every subnet answered a ``fallback_on`` code.
    """
    for subnet in subnets:
        attempt = {
            "subnet_id": subnet["subnet_id"],
            "availability_zone": subnet["availability_zone"],
            "result": None,
            "message": "",
        }
        attempts.append(attempt)
        try:
            return subnet, send(subnet)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            attempt.update(result=error.get("Code"), message=error.get("Message", ""))
            if attempt["result"] not in fallback_on:
                raise
        except BotoCoreError as exc:
            attempt.update(result=type(exc).__name__, message=str(exc))
            raise
    return None, None


def tried(attempts):
    """The attempts in one line, for a failure message: ``subnet-1 (us-east-1a): InsufficientInstanceCapacity; ...``."""
    return "; ".join("%s (%s): %s" % (a["subnet_id"], a["availability_zone"], a["result"]) for a in attempts)
