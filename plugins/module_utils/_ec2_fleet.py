# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Moved to _ec2_client; this name stays until the fleet inventory imports from there."""

from ansible_collections.oceanid.fleet.plugins.module_utils._ec2_client import (
    BOTO3_IMPORT_ERROR,
    HAS_BOTO3,
    describe_credentials,
    error_code,
    error_reason,
    instance_record,
    make_client,
    make_session,
)

__all__ = [
    "BOTO3_IMPORT_ERROR",
    "HAS_BOTO3",
    "describe_credentials",
    "error_code",
    "error_reason",
    "instance_record",
    "make_client",
    "make_session",
]
