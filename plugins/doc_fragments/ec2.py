# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # What the ec2_gpu_* modules add to amazon.aws's fragments (amazon.aws.common.modules,
    # amazon.aws.region.modules, amazon.aws.boto3), which document the connection options:
    # the timeout (plugins/module_utils/_ec2_client.py) and the idempotent attribute.
    # Each module adds check_mode and diff_mode.
    DOCUMENTATION = r"""
options:
  api_timeout:
    description:
      - Seconds to wait to connect to, and for each answer of, the AWS API.
      - A C(connect_timeout) or C(read_timeout) in O(aws_config) takes precedence.
    type: float
    default: 30
attributes:
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Error messages name the credential that was used (the last four characters of the access key and where it came
    from), never the secret, and say what the AWS error code usually means.
"""

    # The read-only ec2_gpu_*_info modules that work in several regions (oceanid.fleet.ec2.info), with DOCUMENTATION.
    INFO = r"""
options:
  regions:
    description:
      - The regions to work in, one after another. Default is O(region) (or the environment's default region).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
"""
