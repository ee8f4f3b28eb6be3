# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.pip_requirements_due: which pip requirements a virtualenv does not satisfy yet."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.filter.host_state import pip_requirements_due

INSTALLED = {"tritonserver": "2.59.0", "pypdf": "5.1.0", "geventhttpclient": "2.3.1", "label-studio-sdk": "1.0.7"}


def test_satisfied_requirements_are_not_due():
    requirements = [
        "tritonserver==2.59.0",
        "pypdf",
        "geventhttpclient[ssl]==2.3.1",
        "Label_Studio.SDK == 1.0.7",
        "/opt/wheels/tritonserver-2.59.0-py3-none-manylinux_2_28_x86_64.whl",
    ]
    assert pip_requirements_due(requirements, INSTALLED) == []


def test_missing_or_other_versions_are_due_in_order():
    requirements = ["numpy", "pypdf==5.2.0", "tritonserver-2.60.0-py3-none-any-x.whl", "pypdf"]
    assert pip_requirements_due(requirements, INSTALLED) == requirements[:3]


def test_what_cannot_be_told_here_goes_to_pip():
    requirements = ["pypdf>=5", "git+https://example.invalid/x.git", "./local-dir", "odd.whl"]
    assert pip_requirements_due(requirements, INSTALLED) == requirements
    assert pip_requirements_due("pypdf", INSTALLED) == []


def test_installed_must_be_the_looks_mapping():
    with pytest.raises(AnsibleFilterError, match="installed must be a mapping"):
        pip_requirements_due(["pypdf"], ["pypdf"])
