# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nvidia filters (plugins/filter/nvidia.py) as the role calls them."""

from __future__ import annotations

import shutil

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.filter.nvidia import FilterModule

FILTERS = FilterModule().filters()


@pytest.mark.parametrize("version", [2, 3, "3"])
def test_the_template_the_role_writes_passes_its_own_check(version):
    template = FILTERS["nvidia_containerd_template"](version)
    assert FILTERS["nvidia_containerd_template_errors"](template, version) == []


@pytest.mark.skipif(shutil.which("containerd") is None, reason="Debian's containerd is not installed: dump not run")
def test_with_containerd_on_the_controller_a_version_2_template_is_also_loaded_by_it():
    template = FILTERS["nvidia_containerd_template"](2)
    assert FILTERS["nvidia_containerd_template_errors"](template, 2, containerd="containerd") == []
    # a template that parses as TOML for tomllib but not for containerd cannot be built from ours; a broken one
    # is reported by the TOML check before containerd is asked
    broken = template.replace('{{ template "base" . }}', '{{ template "base" . }}\n[grpc]\n')
    errors = FILTERS["nvidia_containerd_template_errors"](broken, 2, containerd="containerd")
    assert errors and all("not valid TOML" in error for error in errors)


def test_a_default_runtime_with_version_2_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="default-runtime"):
        FILTERS["nvidia_containerd_template"](2, default_runtime=True)


def test_the_device_plugin_config_from_the_role_options():
    config = FILTERS["nvidia_device_plugin_config"](
        {"time_slicing_replicas": 2, "time_slicing_resources": ["nvidia.com/gpu"], "mig_strategy": "single"}
    )
    assert FILTERS["nvidia_device_plugin_errors"](config) == []
    assert config["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 2}]
    with pytest.raises(AnsibleFilterError, match="unknown option"):
        FILTERS["nvidia_device_plugin_config"]({"replicas": 2})


def test_cdi_spec_errors():
    assert FILTERS["nvidia_cdi_spec_errors"]({"cdiVersion": "1.1.0", "kind": "nvidia.com/gpu", "devices": []}) == [
        "devices: at least one device is required"
    ]
