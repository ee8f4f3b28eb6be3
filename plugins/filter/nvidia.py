# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the nvidia_runtime role: the k3s containerd template (written and checked as k3s would expand it),
the device plugin's config file and CDI specs. The logic is in plugins/module_utils/nvidia_containerd.py,
nvidia_device_plugin.py and nvidia_cdi.py. Each filter's documentation is in plugins/filter/<filter name>.yml."""

from __future__ import annotations

import shutil

from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.module_utils import nvidia_cdi, nvidia_containerd, nvidia_device_plugin


def nvidia_containerd_template(
    version, runtime_name="nvidia", binary_name="/usr/bin/nvidia-container-runtime", default_runtime=False
):
    """The Go template the role writes to config.toml.tmpl (2) or config-v3.toml.tmpl (3)."""
    try:
        return nvidia_containerd.template_text(int(version), runtime_name, binary_name, bool(default_runtime))
    except ValueError as exc:
        raise AnsibleFilterError("nvidia_containerd_template: %s" % exc)


def nvidia_containerd_template_errors(
    template,
    version,
    runtime_name="nvidia",
    binary_name="/usr/bin/nvidia-container-runtime",
    default_runtime=False,
    systemd_cgroup=True,
    expect_cni=True,
    containerd="",
):
    """Every problem of the template once k3s expands it, in each case k3s can be in; empty when sound.

    With ``containerd`` (a binary name or path found on the controller) and version 2, each expansion is also
    loaded with ``containerd config dump``.
    """
    return nvidia_containerd.template_errors(
        template,
        int(version),
        runtime_name,
        binary_name,
        bool(default_runtime),
        bool(systemd_cgroup),
        bool(expect_cni),
        containerd=shutil.which(containerd) if containerd else None,
    )


def nvidia_device_plugin_config(options):
    """The device plugin's config file (a mapping) from the role's options (see the .yml documentation)."""
    options = dict(options or {})
    known = {
        "mig_strategy",
        "fail_on_init_error",
        "device_list_strategy",
        "device_id_strategy",
        "time_slicing_replicas",
        "rename_by_default",
        "fail_requests_greater_than_one",
        "time_slicing_resources",
        "extra_flags",
    }
    unknown = sorted(set(options) - known)
    if unknown:
        raise AnsibleFilterError("nvidia_device_plugin_config: unknown option(s) %s" % ", ".join(unknown))
    if "time_slicing_resources" in options:
        options["time_slicing_resources"] = tuple(options["time_slicing_resources"])
    return nvidia_device_plugin.build_config(**options)


def nvidia_device_plugin_errors(config):
    """Every reason the device plugin would refuse its config file (plus unknown keys); empty when valid."""
    return nvidia_device_plugin.config_errors(config)


def nvidia_cdi_spec_errors(spec):
    """Every reason the CDI library would refuse a CDI spec; empty when it loads."""
    return nvidia_cdi.spec_errors(spec)


class FilterModule:
    """oceanid.fleet nvidia filters."""

    def filters(self):
        return {
            "nvidia_containerd_template": nvidia_containerd_template,
            "nvidia_containerd_template_errors": nvidia_containerd_template_errors,
            "nvidia_device_plugin_config": nvidia_device_plugin_config,
            "nvidia_device_plugin_errors": nvidia_device_plugin_errors,
            "nvidia_cdi_spec_errors": nvidia_cdi_spec_errors,
        }
