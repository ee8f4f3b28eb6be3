# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The NVIDIA k8s-device-plugin's config file (``--config-file``, ``version: v1``): built and checked.

Standard library only. The rules are those of specs/nvidia-k8s.json ``device_plugin.config_file``
(NVIDIA/k8s-device-plugin v0.20.0 at 1b826acc6af3: ``api/config/v1/*.go`` and ``validateFlags`` in
``cmd/nvidia-device-plugin/main.go``); no JSON schema exists upstream. One deliberate difference: the plugin
ignores unknown keys (its YAML goes through encoding/json), which turns a misspelt ``renameByDefault`` into a
silently unshared GPU; here an unknown key is an error.
"""

import re

MIG_STRATEGIES = ("none", "single", "mixed")
DEVICE_LIST_STRATEGIES = ("envvar", "volume-mounts", "cdi-annotations", "cdi-cri")
DEVICE_ID_STRATEGIES = ("uuid", "index")
DISCOVERY_STRATEGIES = ("auto", "nvml", "tegra")
ALLOCATION_POLICIES = ("distributed", "packed")

# field -> expected type ("bool", "str", "dict", a tuple of allowed strings, or a callable check)
_FLAGS = {
    "migStrategy": MIG_STRATEGIES,
    "failOnInitError": "bool",
    "mpsRoot": "str",
    "nvidiaDriverRoot": "str",
    "nvidiaDevRoot": "str",
    "gdrcopyEnabled": "bool",
    "gdsEnabled": "bool",
    "mofedEnabled": "bool",
    "useNodeFeatureAPI": "bool",
    "deviceDiscoveryStrategy": DISCOVERY_STRATEGIES,
    "plugin": "dict",
    "gfd": "dict",
}
_PLUGIN_FLAGS = {
    "passDeviceSpecs": "bool",
    "deviceListStrategy": "device_list",
    "deviceIDStrategy": DEVICE_ID_STRATEGIES,
    "cdiAnnotationPrefix": "str",
    "nvidiaCTKPath": "str",
    "containerDriverRoot": "str",
    "sharedDevicesAllocationPolicy": ALLOCATION_POLICIES,
}
_GFD_FLAGS = {
    "oneshot": "bool",
    "noTimestamp": "bool",
    "sleepInterval": "duration",
    "outputFile": "str",
    "machineTypeFile": "str",
}
_TOP = ("version", "flags", "resources", "sharing", "imex")
_REPLICATED = ("renameByDefault", "failRequestsGreaterThanOne", "resources")
_REPLICATED_RESOURCE = ("name", "rename", "devices", "replicas")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GO_DURATION = re.compile(r"^(infinite|\d+|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$")


def build_config(
    mig_strategy="none",
    fail_on_init_error=True,
    device_list_strategy="envvar",
    device_id_strategy="uuid",
    time_slicing_replicas=0,
    rename_by_default=False,
    fail_requests_greater_than_one=True,
    time_slicing_resources=("nvidia.com/gpu",),
    extra_flags=None,
):
    """The config file the role ships in its ConfigMap; time-slicing only with ``time_slicing_replicas`` >= 2."""
    flags = {"migStrategy": mig_strategy, "failOnInitError": bool(fail_on_init_error)}
    flags.update(extra_flags or {})
    plugin = dict(flags.get("plugin") or {})
    plugin.setdefault("deviceListStrategy", device_list_strategy)
    plugin.setdefault("deviceIDStrategy", device_id_strategy)
    flags["plugin"] = plugin
    config = {"version": "v1", "flags": flags}
    if time_slicing_replicas:
        config["sharing"] = {
            "timeSlicing": {
                "renameByDefault": bool(rename_by_default),
                "failRequestsGreaterThanOne": bool(fail_requests_greater_than_one),
                "resources": [{"name": name, "replicas": time_slicing_replicas} for name in time_slicing_resources],
            }
        }
    return config


def _type_error(where, value, expected):
    if expected == "bool":
        return None if isinstance(value, bool) else "%s must be true or false, not %r" % (where, value)
    if expected == "str":
        return None if isinstance(value, str) else "%s must be a string, not %r" % (where, value)
    if expected == "dict":
        return None if isinstance(value, dict) else "%s must be a mapping, not %r" % (where, value)
    if expected == "duration":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and _GO_DURATION.match(value)
        )
        return None if ok else "%s must be a Go duration (30s, 1m) or 'infinite', not %r" % (where, value)
    if expected == "device_list":
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            return "%s must be a string or a list of strings, not %r" % (where, value)
        bad = [v for v in values if v not in DEVICE_LIST_STRATEGIES]
        if bad:
            return "invalid --device-list-strategy option %s at %s (expected %s)" % (
                ", ".join(bad),
                where,
                ", ".join(DEVICE_LIST_STRATEGIES),
            )
        return None
    if isinstance(expected, tuple):
        if value not in expected:
            return "%s is %r, expected one of %s" % (where, value, ", ".join(expected))
        return None
    raise ValueError(expected)


def _check_fields(where, section, fields, errors):
    if not isinstance(section, dict):
        errors.append("%s must be a mapping, not %r" % (where, section))
        return
    for key, value in section.items():
        if key not in fields:
            errors.append(
                "%s.%s is not a field of the device plugin config (expected %s)" % (where, key, ", ".join(fields))
            )
            continue
        expected = fields[key]
        if expected is None:
            continue
        error = _type_error("%s.%s" % (where, key), value, expected)
        if error:
            errors.append(error)


def resource_name_error(name):
    """The rule of ``sharing.*.resources[].name``: nvidia.com/ is added if missing, <= 63 chars, DNS subdomain part."""
    if not isinstance(name, str) or not name:
        return "a resource name must be a non-empty string, not %r" % (name,)
    full = name if name.startswith("nvidia.com/") else "nvidia.com/" + name
    if len(full) > 63:
        return "resource name %r is longer than 63 characters" % full
    if not _DNS_SUBDOMAIN.match(full[len("nvidia.com/") :]):
        return "resource name %r: the part after nvidia.com/ must be a DNS subdomain" % full
    return None


def _replicated_errors(where, section, errors):
    if not isinstance(section, dict):
        errors.append("%s must be a mapping" % where)
        return
    _check_fields(
        where,
        section,
        {"renameByDefault": "bool", "failRequestsGreaterThanOne": "bool", "resources": None},
        errors,
    )
    resources = section.get("resources")
    if not isinstance(resources, list) or not resources:
        errors.append("%s.resources: no resources specified" % where)
        return
    for index, resource in enumerate(resources):
        item = "%s.resources[%d]" % (where, index)
        if not isinstance(resource, dict):
            errors.append("%s must be a mapping" % item)
            continue
        _check_fields(item, resource, {"name": None, "rename": "str", "devices": None, "replicas": None}, errors)
        error = resource_name_error(resource.get("name"))
        if error:
            errors.append("%s: %s" % (item, error))
        replicas = resource.get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int):
            errors.append("%s.replicas must be an integer, not %r" % (item, replicas))
        elif replicas < 2:
            errors.append("%s: number of replicas must be >= 2, not %d" % (item, replicas))


def config_errors(config):
    """Every reason the device plugin (v0.20.0) would refuse ``config``, plus unknown keys; empty when valid."""
    errors = []
    if not isinstance(config, dict):
        return ["the device plugin config must be a mapping, not %r" % (config,)]
    for key in config:
        if key not in _TOP:
            errors.append("%s is not a field of the device plugin config (expected %s)" % (key, ", ".join(_TOP)))
    version = config.get("version", "")
    if version not in ("", "v1"):
        errors.append("unknown version: %s" % version)
    flags = config.get("flags") or {}
    _check_fields("flags", flags, _FLAGS, errors)
    if isinstance(flags, dict):
        if isinstance(flags.get("plugin"), dict):
            _check_fields("flags.plugin", flags["plugin"], _PLUGIN_FLAGS, errors)
        if isinstance(flags.get("gfd"), dict):
            _check_fields("flags.gfd", flags["gfd"], _GFD_FLAGS, errors)
    sharing = config.get("sharing") or {}
    if not isinstance(sharing, dict):
        errors.append("sharing must be a mapping")
        sharing = {}
    for key in sharing:
        if key not in ("timeSlicing", "mps"):
            errors.append("sharing.%s is not a field (expected timeSlicing, mps)" % key)
    if "timeSlicing" in sharing:
        _replicated_errors("sharing.timeSlicing", sharing["timeSlicing"], errors)
    if sharing.get("mps") is not None:
        _replicated_errors("sharing.mps", sharing["mps"], errors)
        if isinstance(flags, dict):
            if flags.get("migStrategy") == "mixed":
                errors.append("using --mig-strategy=mixed is not supported with MPS")
            if not flags.get("mpsRoot"):
                errors.append("using MPS requires --mps-root to be specified (flags.mpsRoot)")
    imex = config.get("imex")
    if imex is not None:
        _check_fields("imex", imex, {"channelIDs": None, "required": "bool"}, errors)
        if isinstance(imex, dict) and imex.get("channelIDs") not in (None, [], [0]):
            errors.append("invalid IMEX channel IDs: channelIDs must be [] or [0], not %r" % (imex.get("channelIDs"),))
    resources = config.get("resources")
    if resources is not None:
        _check_fields("resources", resources, {"gpus": None, "mig": None}, errors)
    return errors


def advertised_resources(config):
    """The resource names the plugin advertises for ``config`` (nvidia.com/gpu, or nvidia.com/gpu.shared)."""
    time_slicing = (config.get("sharing") or {}).get("timeSlicing") or {}
    names = []
    for resource in time_slicing.get("resources") or [{"name": "nvidia.com/gpu"}]:
        name = resource["name"] if resource["name"].startswith("nvidia.com/") else "nvidia.com/" + resource["name"]
        names.append(name + ".shared" if time_slicing.get("renameByDefault") else name)
    return names
