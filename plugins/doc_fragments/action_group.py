# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # Attributes every module of this collection shares: membership of the fleet action group (see
    # meta/runtime.yml) and the platform. Used as oceanid.fleet.action_group.
    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/oceanid.fleet.fleet) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - oceanid.fleet.fleet
  platform:
    platforms: posix
"""
