# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that compare what a role wants with what oceanid.fleet.host_state_info found. Each filter's
documentation is in plugins/filter/<filter name>.yml."""

from __future__ import annotations

import os
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.module_utils.host_state import canonical_distribution_name

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_BARE = re.compile(r"^(%s)(?:\[[^\]]*\])?$" % _NAME)
_PINNED = re.compile(r"^(%s)(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9.+!_-]+)$" % _NAME)


def _wanted(requirement):
    """(name, version) that satisfies a requirement as `pip install` would leave it ("" version: any), or None
    when it cannot be told here (a range, a URL, a path that is not a wheel): pip decides those."""
    requirement = requirement.strip()
    if requirement.endswith(".whl"):
        # name-version(-build)?-python-abi-platform.whl
        parts = os.path.basename(requirement)[: -len(".whl")].split("-")
        return (parts[0], parts[1]) if len(parts) >= 5 else None
    pinned = _PINNED.match(requirement)
    if pinned:
        return pinned.group(1), pinned.group(2)
    bare = _BARE.match(requirement)
    return (bare.group(1), "") if bare else None


def pip_requirements_due(requirements, installed):
    """The requirements that ansible.builtin.pip (state=present) would still have to install, given the
    virtualenv's distributions as host_state_info reports them ({canonical name: version})."""
    if isinstance(requirements, str):
        requirements = [requirements]
    if not isinstance(installed, dict):
        raise AnsibleFilterError(
            "pip_requirements_due: installed must be a mapping of distribution name to version "
            "(host_state_info's virtualenvs[<venv>]), got %s" % type(installed).__name__
        )
    due = []
    for requirement in requirements:
        wanted = _wanted(str(requirement))
        if wanted is None:
            due.append(requirement)
            continue
        name, version = wanted
        have = installed.get(canonical_distribution_name(name))
        if have is None or (version and have != version):
            due.append(requirement)
    return due


class FilterModule:
    """Comparisons with host_state_info's findings."""

    def filters(self):
        return {"pip_requirements_due": pip_requirements_due}
