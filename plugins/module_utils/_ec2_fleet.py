# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWS connection helpers shared by the ``ec2_gpu_*`` modules and the ``oceanid.fleet.fleet`` inventory.

Private to this collection (the leading underscore). The modules' shared options are
``EC2_COMMON_ARGUMENT_SPEC`` (documented by the ``oceanid.fleet.ec2`` doc fragment); credentials come
from those options or from the usual AWS chain (environment, shared files, instance or container role).
Error texts name the credential that was used (never a secret) and say why a call failed.
"""

import datetime
import traceback

try:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None

EC2_COMMON_ARGUMENT_SPEC = {
    "region": {"type": "str", "aliases": ["aws_region"]},
    "endpoint_url": {"type": "str", "aliases": ["aws_endpoint_url"]},
    "profile": {"type": "str", "aliases": ["aws_profile"]},
    "access_key": {"type": "str", "aliases": ["aws_access_key_id"], "no_log": False},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key"], "no_log": True},
    "session_token": {"type": "str", "aliases": ["aws_session_token"], "no_log": True},
    "api_timeout": {"type": "float", "default": 30.0},
}

# botocore's names for where credentials came from, in words
_CREDENTIAL_METHODS = {
    "explicit": "the access_key/secret_key options",
    "env": "environment variables",
    "shared-credentials-file": "the shared credentials file",
    "config-file": "the AWS config file",
    "custom-process": "a credential_process",
    "assume-role": "an assumed role (AWS config file)",
    "assume-role-with-web-identity": "a web identity token",
    "sso": "AWS IAM Identity Center (SSO)",
    "container-role": "the container role",
    "iam-role": "the instance role (instance metadata)",
    "boto-config": "a boto2 config file",
}

# error codes and what they usually mean for the operator
_HINTS = {
    "AuthFailure": "the credentials were rejected (wrong or deactivated access key)",
    "UnrecognizedClientException": "the credentials were rejected (unknown access key)",
    "InvalidClientTokenId": "the credentials were rejected (unknown access key)",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the session token has expired; renew it",
    "RequestExpired": "the request expired; is this machine's clock right?",
    "UnauthorizedOperation": "the credentials lack an IAM permission for this call",
    "AccessDenied": "the credentials lack an IAM permission for this call",
    "OptInRequired": "the account is not subscribed to this service or region",
    "InvalidAMIID.NotFound": "the AMI does not exist in this region",
    "InvalidSubnetID.NotFound": "the subnet does not exist in this region",
    "InvalidGroup.NotFound": "a security group does not exist in this VPC",
    "InvalidKeyPair.NotFound": "the key pair does not exist in this region",
    "InsufficientInstanceCapacity": "AWS has no capacity for this instance type in this Availability Zone right now",
    "Unsupported": "this instance type is not offered in this Availability Zone",
}


def make_session(profile=None, access_key=None, secret_key=None, session_token=None):
    """A boto3 session from explicit options, or the default credential chain when none are given."""
    kwargs = {}
    if profile:
        kwargs["profile_name"] = profile
    if access_key or secret_key:
        kwargs["aws_access_key_id"] = access_key
        kwargs["aws_secret_access_key"] = secret_key
        if session_token:
            kwargs["aws_session_token"] = session_token
    return boto3.session.Session(**kwargs)


def make_client(session, service, region, endpoint_url=None, timeout=30.0, max_attempts=3):
    """A botocore client with bounded timeouts and AWS's standard retry mode (throttling, 5xx).

    ``max_attempts`` counts every attempt, the first one included (1: never retry).
    """
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        user_agent_extra="oceanid.fleet",
    )
    return session.client(service, region_name=region, endpoint_url=endpoint_url or None, config=config)


def describe_credentials(session, profile=None):
    """Which credential a session uses, in words, without the secret: for error messages.

    Resolving credentials can query the instance metadata service; call this on error paths only.
    """
    where = "profile '%s'" % profile if profile else None
    try:
        credentials = session.get_credentials()
    except Exception as exc:  # pylint: disable=broad-except
        return "%s (unusable: %s)" % (where or "the default credential chain", exc)
    if credentials is None:
        return "no credentials found (%s, environment, shared files, instance role)" % (where or "no profile set")
    key = credentials.access_key or ""
    masked = "****" + key[-4:] if len(key) > 4 else "****"
    method = _CREDENTIAL_METHODS.get(credentials.method, credentials.method or "an unknown source")
    text = "access key %s from %s" % (masked, method)
    if where:
        text += " (%s)" % where
    return text


def error_code(exc):
    """The AWS error code of a ClientError (``InsufficientInstanceCapacity``, ...), else None."""
    if HAS_BOTO3 and isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def error_reason(exc):
    """Why a call failed, in one line: the AWS code and message, or the client-side error, plus a hint."""
    code = error_code(exc)
    if code is not None:
        message = exc.response.get("Error", {}).get("Message") or ""
        text = "%s: %s" % (code, message) if message else code
        hint = _HINTS.get(code)
        return "%s (%s)" % (text, hint) if hint else text
    if HAS_BOTO3:
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return "no AWS credentials found (options, environment, shared files, instance role)"
        if isinstance(exc, botocore.exceptions.ProfileNotFound):
            return str(exc)
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
            return "cannot reach the EC2 endpoint: %s" % exc
        if isinstance(exc, botocore.exceptions.ReadTimeoutError):
            return "the EC2 endpoint did not answer in time: %s" % exc
        if isinstance(exc, BotoCoreError):
            return "%s: %s" % (type(exc).__name__, exc)
    return "%s: %s" % (type(exc).__name__, exc)


def boto3_tags(tags):
    """``{key: value}`` to EC2's ``[{Key, Value}]``."""
    return [{"Key": str(k), "Value": "" if v is None else str(v)} for k, v in (tags or {}).items()]


def tag_dict(tag_list):
    """EC2's ``[{Key, Value}]`` to ``{key: value}``."""
    return {t["Key"]: t.get("Value", "") for t in (tag_list or [])}


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
        "tags": tag_dict(instance.get("Tags")),
    }
