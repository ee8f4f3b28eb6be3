# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the S3 model modules share (see doc_fragments/s3.py): the argument spec, the module and client
construction, and one way to run a transfer and report its failure."""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils import s3_client as _s3
from ansible_collections.oceanid.fleet.plugins.module_utils.s3_model_transfer import VerificationError

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
_NO_REQUESTS = {"GET": 0, "HEAD": 0, "PUT": 0, "POST": 0, "LIST": 0, "DELETE": 0}


def s3_module(options, **kwargs):
    """An AnsibleModule (check mode supported) with the common S3 options and the module's own."""
    argument_spec = dict(S3_COMMON_ARGUMENT_SPEC)
    argument_spec.update(options)
    return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **kwargs)


def fail(module, msg, client=None, **kwargs):
    """fail_json with what every S3 module failure reports: not changed, and the requests sent (none yet: zeros)."""
    module.fail_json(msg=msg, changed=False, requests=dict(client.stats if client else _NO_REQUESTS), **kwargs)


def s3_client(module):
    """An S3Client for the module's options; fails the module with the engine's message on bad input."""
    params = module.params
    if params["concurrency"] < 1:
        fail(module, "concurrency must be 1 or more, got %d" % params["concurrency"])
    try:
        endpoint = _s3.S3Endpoint(
            params["endpoint_url"],
            params["region"],
            params["access_key"],
            params["secret_key"],
            params["session_token"],
            verify_tls=params["validate_certs"],
            ca_bundle=params["ca_bundle"],
        )
    except _s3.TransferError as exc:
        fail(module, str(exc))
    return _s3.S3Client(endpoint, max_connections=params["concurrency"])


def run_transfer(module, transfer, local, untouched, verb, **kwargs):
    """Run ``transfer(client, bucket, local, concurrency=..., check_only=..., **kwargs)`` and return its result
    with the requests sent; on failure, fail the module with the engine's message and ``untouched`` (what
    became of the local side), or, for an OSError, with ``verb`` (reading, writing), the path and the traceback."""
    client = s3_client(module)
    params = module.params
    suffix = "; %s" % untouched if untouched else ""
    try:
        result = transfer(
            client,
            params["bucket"],
            local,
            concurrency=params["concurrency"],
            check_only=module.check_mode,
            **kwargs,
        )
    except VerificationError as exc:
        fail(module, str(exc) + suffix, client, path=exc.path, expected=exc.expected, actual=exc.actual)
    except _s3.TransferError as exc:
        fail(module, str(exc) + suffix, client)
    except OSError as exc:
        fail(module, "%s %s failed: %s%s" % (verb, local, exc, suffix), client, exception=traceback.format_exc())
    result["requests"] = client.stats
    return result
