# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument spec and client construction shared by the S3 model modules (see doc_fragments/s3.py)."""

from ansible_collections.oceanid.fleet.plugins.module_utils import s3_transfer

S3_COMMON_ARGUMENT_SPEC = {
    "bucket": {"type": "str", "required": True},
    "endpoint_url": {"type": "str"},
    "region": {"type": "str"},
    "access_key": {"type": "str", "aliases": ["aws_access_key_id"], "no_log": False},
    "secret_key": {"type": "str", "aliases": ["aws_secret_access_key"], "no_log": True},
    "session_token": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_bundle": {"type": "path"},
    "concurrency": {"type": "int", "default": 16},
}


def s3_client(module):
    """An S3Client for the module's options; fails the module with the engine's message on bad input."""
    params = module.params
    if params["concurrency"] < 1:
        module.fail_json(msg="concurrency must be 1 or more, got %d" % params["concurrency"])
    try:
        endpoint = s3_transfer.S3Endpoint(
            params["endpoint_url"],
            params["region"],
            params["access_key"],
            params["secret_key"],
            params["session_token"],
            verify_tls=params["validate_certs"],
            ca_bundle=params["ca_bundle"],
        )
    except s3_transfer.TransferError as exc:
        module.fail_json(msg=str(exc))
    return s3_transfer.S3Client(endpoint, max_connections=params["concurrency"])
