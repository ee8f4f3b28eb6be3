# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Moved to ec2_gpu_types; this name stays until the fleet inventory imports from there."""

from ansible_collections.oceanid.fleet.plugins.module_utils.ec2_gpu_types import (
    gpu_facts,
    is_gpu_family,
    validate_extra_types,
)

__all__ = ["gpu_facts", "is_gpu_family", "validate_extra_types"]
