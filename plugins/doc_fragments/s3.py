# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # Object-store options and shared attributes of the modules built on the model transfer engine
    # (plugins/module_utils/s3_client.py, model_manifest.py, s3_model_transfer.py).
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
  idempotent:
    support: full
    description:
      - When run twice in a row outside check mode, with the same arguments and an unchanged source, the second run changes nothing.
options:
  bucket:
    description: The bucket that holds C(models/<key>/) and C(manifests/models/<key>.json).
    type: str
    required: true
  endpoint_url:
    description:
      - URL of an S3-compatible server (SeaweedFS, MinIO, Ceph RGW), for example C(http://seaweed1:8333).
      - Omit for AWS S3 in O(region) (virtual-hosted addressing); with an endpoint, path-style addressing is used.
    type: str
  region:
    description: Region used for signing (SigV4); C(us-east-1) when unset and not in C(AWS_REGION)/C(AWS_DEFAULT_REGION).
    type: str
  access_key:
    description:
      - Access key. With O(secret_key) unset too, credentials come from C(AWS_ACCESS_KEY_ID)/C(AWS_SECRET_ACCESS_KEY)
        and, when botocore is installed on the target, from its chain (profiles, SSO, EC2 instance profile).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description: Secret key that goes with O(access_key). Never logged.
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description: Session token of temporary credentials. Never logged.
    type: str
  validate_certs:
    description: Verify the server's TLS certificate with an C(https) endpoint.
    type: bool
    default: true
  ca_bundle:
    description: A CA certificate file to verify the endpoint's certificate with, instead of the system's.
    type: path
  concurrency:
    description: Parallel requests.
    type: int
    default: 16
notes:
  - The transfer engine uses the Python standard library only and signs requests itself (SigV4); botocore is
    optional and only used to find credentials.
"""
