# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # AWS connection options of the ec2_gpu_* modules
    # (plugins/module_utils/_ec2_fleet.py, EC2_COMMON_ARGUMENT_SPEC).
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region, for example V(us-east-1).
      - Defaults to the C(AWS_REGION) or C(AWS_DEFAULT_REGION) environment variable or the profile's region.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - Talk to this endpoint instead of AWS's own, for example a VPC endpoint or a test server.
      - The C(AWS_ENDPOINT_URL) and C(AWS_ENDPOINT_URL_EC2) environment variables work too.
    type: str
    aliases: [aws_endpoint_url]
  profile:
    description:
      - The AWS profile (shared config and credentials files) to use.
      - Without O(profile), O(access_key) and O(secret_key), credentials come from the usual AWS chain, in this order
        the C(AWS_ACCESS_KEY_ID), C(AWS_SECRET_ACCESS_KEY) and C(AWS_SESSION_TOKEN) environment variables (what an
        AWX "Amazon Web Services" credential sets), C(AWS_PROFILE), the shared files, or the instance role.
    type: str
    aliases: [aws_profile]
  access_key:
    description: An AWS access key ID.
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description: The secret access key that goes with O(access_key). Not logged.
    type: str
    aliases: [aws_secret_access_key]
  session_token:
    description: A session token for temporary credentials. Not logged.
    type: str
    aliases: [aws_session_token]
  api_timeout:
    description: Seconds to wait to connect to, and for each answer of, the AWS API.
    type: float
    default: 30
requirements:
  - boto3 (and botocore) on the host that runs the module, usually the controller (C(delegate_to) or C(hosts) C(localhost)).
notes:
  - Error messages name the credential that was used (the last four characters of the access key and where it came
    from), never the secret.
"""

    # Attributes of every ec2_gpu_* module (oceanid.fleet.ec2.attributes, with oceanid.fleet.action_group);
    # each module adds check_mode and diff_mode.
    ATTRIBUTES = r"""
attributes:
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
"""

    # The read-only ec2_gpu_*_info modules (oceanid.fleet.ec2.info_attributes), with ATTRIBUTES.
    INFO_ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
"""

    # The regions option of the modules that work in several regions (oceanid.fleet.ec2.regions).
    REGIONS = r"""
options:
  regions:
    description:
      - The regions to work in, one after another. Default is O(region) (or the environment's default region).
    type: list
    elements: str
    default: []
"""
