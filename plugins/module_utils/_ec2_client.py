# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""This collection's one policy for EC2 clients (timeouts and retries), and boto3 clients for the fleet inventory.

Private to this collection (the leading underscore); other collections use amazon.aws directly.

- The ``ec2_gpu_*`` modules make their clients with amazon.aws (``AnsibleAWSModule.client``), passing
  ``client_config(api_timeout)`` and ``READ_RETRY`` or ``LAUNCH_RETRY`` from here.
- The ``oceanid.fleet.fleet`` inventory is not a module: it makes a boto3 session and clients with ``make_session``
  and ``make_client`` (same ``client_config``), and finds here the error texts (``describe_credentials``, ``error_code``,
  ``error_reason``) and the instance records (``instance_record``) it reports.
"""

import traceback

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_errors import (
    describe_credentials,
    error_code,
    error_reason,
)
from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_instances import instance_record

__all__ = [
    "BOTO3_IMPORT_ERROR",
    "HAS_BOTO3",
    "LAUNCH_RETRY",
    "READ_RETRY",
    "TIMEOUT_ARGUMENT_SPEC",
    "client_config",
    "make_client",
    "make_session",
    # for the inventory, which reaches everything through this module
    "describe_credentials",
    "error_code",
    "error_reason",
    "instance_record",
]

try:
    import boto3
    from botocore.config import Config
except ImportError:
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None

# The modules' option for client_config's timeout (documented by the oceanid.fleet.ec2 doc fragment).
TIMEOUT_ARGUMENT_SPEC = {"api_timeout": {"type": "float", "default": 30.0}}

# Reads (Describe*, paginated with amazon.aws's paginated_query_with_retries): amazon.aws's throttling and
# server-error codes, with a jittered backoff, over botocore's own retries of client_config.
READ_RETRY = AWSRetry.jittered_backoff(retries=5, delay=1, max_delay=10)

# RunInstances: botocore does not retry it (client_config(max_attempts=1)), since AWS answers a capacity error with
# HTTP 500, which botocore would send again; AWSRetry sends it again only on throttling (and AWS-side failures),
# after 1, 2, 4 and 8 s. Every request carries a ClientToken, so a repeated one never launches a second instance.
LAUNCH_RETRY = AWSRetry.exponential_backoff(
    retries=5, delay=1.0, backoff=2.0, max_delay=None, catch_extra_error_codes=["ThrottlingException"]
)


def client_config(timeout=30.0, max_attempts=3):
    """botocore settings: bounded timeouts and AWS's standard retry mode (throttling, 5xx, connection errors).

    ``max_attempts`` counts every attempt, the first one included (1: botocore never retries).
    """
    return Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        user_agent_extra="oceanid.fleet",
    )


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
    """A botocore client of ``session`` under ``client_config``."""
    config = client_config(timeout, max_attempts)
    return session.client(service, region_name=region, endpoint_url=endpoint_url or None, config=config)
