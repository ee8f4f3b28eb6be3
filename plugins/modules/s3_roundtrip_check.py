#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: s3_roundtrip_check
short_description: Smoke-check an S3 endpoint with a put, get, compare and delete of one small object
version_added: 0.1.0
description:
  - Puts a small object with a unique key under O(prefix) in O(bucket), reads it back, compares the bytes,
    deletes it and checks that it is gone, with the collection's S3 client (the model transfer engine's; no
    boto3 needed).
  - Returns one smoke record (the format of M(oceanid.fleet.smoke_report)); it never fails because the round
    trip failed. The record names the endpoint, the bucket, the key, the size and the step that failed with the
    server's answer.
  - The object is deleted again whatever happened after the put, so nothing is left behind; for that reason the
    round trip also runs in check mode.
options:
  endpoint_url:
    description: URL of the S3-compatible server, for example C(http://seaweed1:8333); omit for AWS S3 in O(region).
    type: str
  region:
    description: Region used for signing (SigV4); C(us-east-1) when unset.
    type: str
  access_key:
    description: Access key; with O(secret_key) unset too, the environment's (C(AWS_ACCESS_KEY_ID)).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description: Secret key that goes with O(access_key). Never logged.
    type: str
    aliases: [aws_secret_access_key]
  validate_certs:
    description: Verify the server's TLS certificate with an C(https) endpoint.
    type: bool
    default: true
  bucket:
    description: The bucket the object goes to. It must exist (the check creates no bucket).
    type: str
    required: true
  prefix:
    description: Key prefix of the test object; the key is C(<prefix><random hex>).
    type: str
    default: .oceanid-smoke/
  size:
    description: Bytes of random data in the object.
    type: int
    default: 4096
  host:
    description: The inventory host the record is about (the S3 gateway's host).
    type: str
    default: ""
  layer:
    description: The record's C(layer).
    type: str
    default: storage
  timeout:
    description: Seconds for each request.
    type: float
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - The round trip runs in check mode too; it leaves nothing behind and C(changed) is always false.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: When run twice in a row, the second run reports no change either (it never reports one).
    support: full
seealso:
  - module: oceanid.fleet.smoke_report
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: S3 round trip on the fleet's SeaweedFS gateway with the model puller's keys
  oceanid.fleet.s3_roundtrip_check:
    endpoint_url: http://10.0.0.7:8333
    bucket: models
    access_key: "{{ model_puller_s3_access_key }}"
    secret_key: "{{ model_puller_s3_secret_key }}"
    host: seaweed1
  delegate_to: localhost
  register: s3_smoke
"""

RETURN = r"""
record:
  description: The smoke record of the round trip.
  returned: always
  type: dict
  sample:
    layer: storage
    check: s3 round trip
    host: seaweed1
    status: ok
    detail: "http://10.0.0.7:8333 bucket models: put, got back and deleted .oceanid-smoke/1f2e... (4096 bytes)"
"""

import binascii
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.s3_client import S3Client, S3Endpoint, TransferError
from ansible_collections.oceanid.fleet.plugins.module_utils.smoke import FAILED, OK, record

CHECK = "s3 round trip"


def roundtrip(client, bucket, key, body):
    """Put, get, compare, delete, confirm gone; returns a failure message or None."""
    step = "put"
    try:
        client.put(bucket, key, body, content_type="application/octet-stream")
        try:
            step = "get"
            got = client.get(bucket, key, missing_ok=True)
            if got is None:
                return "get: the object just put is not there (404)"
            if got != body:
                return "get: %d bytes came back, not the %d put (content differs)" % (len(got), len(body))
        finally:
            step = "delete"
            client.delete(bucket, key)
        step = "check the delete"
        if client.head(bucket, key) is not None:
            return "delete: the object is still there after DELETE"
    except TransferError as exc:
        return "%s: %s" % (step, exc)
    return None


def main():
    module = AnsibleModule(
        argument_spec={
            "endpoint_url": {"type": "str"},
            "region": {"type": "str"},
            "access_key": {"type": "str", "aliases": ["aws_access_key_id"], "no_log": False},
            "secret_key": {"type": "str", "aliases": ["aws_secret_access_key"], "no_log": True},
            "validate_certs": {"type": "bool", "default": True},
            "bucket": {"type": "str", "required": True},
            "prefix": {"type": "str", "default": ".oceanid-smoke/"},
            "size": {"type": "int", "default": 4096},
            "host": {"type": "str", "default": ""},
            "layer": {"type": "str", "default": "storage"},
            "timeout": {"type": "float", "default": 30.0},
        },
        required_together=[("access_key", "secret_key")],
        supports_check_mode=True,
    )
    params = module.params
    if params["size"] < 1:
        module.fail_json(msg="size must be at least 1, not %d" % params["size"])
    where = "%s bucket %s" % (params["endpoint_url"] or "AWS S3", params["bucket"])
    key = params["prefix"] + binascii.hexlify(os.urandom(8)).decode("ascii")
    try:
        endpoint = S3Endpoint(
            endpoint_url=params["endpoint_url"],
            region=params["region"],
            access_key=params["access_key"],
            secret_key=params["secret_key"],
            verify_tls=params["validate_certs"],
        )
    except TransferError as exc:
        module.fail_json(msg=str(exc))
    client = S3Client(endpoint, max_connections=1, retries=1, timeout=params["timeout"])
    try:
        problem = roundtrip(client, params["bucket"], key, os.urandom(params["size"]))
    finally:
        client.close()
    if problem:
        result = record(params["layer"], CHECK, params["host"], FAILED, "%s, key %s: %s" % (where, key, problem))
    else:
        detail = "%s: put, got back the same %d bytes and deleted %s" % (where, params["size"], key)
        result = record(params["layer"], CHECK, params["host"], OK, detail)
    module.exit_json(changed=False, record=result)


if __name__ == "__main__":
    main()
