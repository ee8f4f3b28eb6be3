# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real S3 client (boto3) for the seaweedfs scenario's verify; prints one JSON object.

    s3_client.py roundtrip ENDPOINT BUCKET   put/get with the admin keys, what the reader, a wrong secret
                                             and an anonymous client may do
    s3_client.py sha256 ENDPOINT BUCKET KEY  sha256 and size of an object read with the admin keys
Keys come from S3_ADMIN_ACCESS/S3_ADMIN_SECRET and S3_READER_ACCESS/S3_READER_SECRET.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError


def _client(endpoint, access=None, secret=None):
    config = Config(
        signature_version=UNSIGNED if access is None else "s3v4",
        retries={"max_attempts": 1},
        s3={"addressing_style": "path"},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=config,
    )


def _error(call):
    """The S3 error code of call(), or "" when it succeeded."""
    try:
        call()
    except ClientError as error:
        return error.response.get("Error", {}).get("Code", "?")
    return ""


def roundtrip(endpoint, bucket):
    admin = _client(endpoint, os.environ["S3_ADMIN_ACCESS"], os.environ["S3_ADMIN_SECRET"])
    reader = _client(endpoint, os.environ["S3_READER_ACCESS"], os.environ["S3_READER_SECRET"])
    wrong = _client(endpoint, os.environ["S3_ADMIN_ACCESS"], "not-the-secret")
    anonymous = _client(endpoint)
    if bucket not in [entry["Name"] for entry in admin.list_buckets().get("Buckets", [])]:
        admin.create_bucket(Bucket=bucket)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    admin.put_object(Bucket=bucket, Key="s3-put.bin", Body=payload)
    read_back = admin.get_object(Bucket=bucket, Key="s3-put.bin")["Body"].read()
    return {
        "put_get_equal": read_back == payload,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "reader_get": hashlib.sha256(reader.get_object(Bucket=bucket, Key="s3-put.bin")["Body"].read()).hexdigest(),
        "reader_put_error": _error(lambda: reader.put_object(Bucket=bucket, Key="reader.txt", Body=b"no")),
        "wrong_secret_error": _error(wrong.list_buckets),
        "anonymous_list_error": _error(lambda: anonymous.list_objects_v2(Bucket=bucket)),
        "anonymous_get_error": _error(lambda: anonymous.get_object(Bucket=bucket, Key="s3-put.bin")),
        "anonymous_put_error": _error(lambda: anonymous.put_object(Bucket=bucket, Key="anon.txt", Body=b"no")),
    }


def sha256(endpoint, bucket, key):
    admin = _client(endpoint, os.environ["S3_ADMIN_ACCESS"], os.environ["S3_ADMIN_SECRET"])
    body = admin.get_object(Bucket=bucket, Key=key)["Body"].read()
    return {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


def main(argv):
    if argv[0] == "roundtrip":
        result = roundtrip(argv[1], argv[2])
    else:
        result = sha256(argv[1], argv[2], argv[3])
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
