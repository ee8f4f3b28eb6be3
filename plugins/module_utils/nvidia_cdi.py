# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of a CDI spec (what ``nvidia-ctk cdi generate`` writes) as the CDI library loads it. Standard library only.

The rules are those of specs/nvidia-k8s.json ``cdi`` (cncf-tags/container-device-interface at 05ae4b5bb730:
SPEC.md, specs-go/config.go and version.go, pkg/cdi/spec.go, device.go, container-edits.go, pkg/parser): the
loader is strict (an unknown field makes the spec invalid), ``cdiVersion`` must be a known version and at least
the version the content needs, ``kind`` is ``vendor/class``, at least one device, device names valid and unique,
no device without edits. The JSON schema of the same commit (tests/support/nvidia_specs) is looser (no
``additionalProperties: false``); the unit tests check that what passes here also passes the schema.
"""

import re

VALID_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
_NAME_PART = re.compile(r"^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$")

_SPEC_FIELDS = ("cdiVersion", "kind", "annotations", "devices", "containerEdits")
_DEVICE_FIELDS = ("name", "annotations", "containerEdits")
_EDIT_FIELDS = ("env", "deviceNodes", "hooks", "mounts", "intelRdt", "additionalGids", "netDevices")
_NODE_FIELDS = ("path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid")
_MOUNT_FIELDS = ("hostPath", "containerPath", "options", "type")
_HOOK_FIELDS = ("hookName", "path", "args", "env", "timeout")
_RDT_FIELDS = ("closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring")
_NETDEV_FIELDS = ("hostInterfaceName", "name")


def _version_tuple(version):
    return tuple(int(part) for part in version.split("."))


def _unknown(where, item, fields, errors):
    if not isinstance(item, dict):
        errors.append("%s must be a mapping" % where)
        return False
    for key in item:
        if key not in fields:
            errors.append("%s: unknown field %r (the CDI loader is strict)" % (where, key))
    return True


def _needs(where, minimum, needed):
    needed.append((minimum, where))


def _edits_errors(where, edits, errors, needed):
    if not _unknown(where, edits, _EDIT_FIELDS, errors):
        return
    for index, env in enumerate(edits.get("env") or []):
        if not isinstance(env, str) or "=" not in env:
            errors.append("%s.env[%d]: %r is not NAME=VALUE" % (where, index, env))
    for index, node in enumerate(edits.get("deviceNodes") or []):
        item = "%s.deviceNodes[%d]" % (where, index)
        if not _unknown(item, node, _NODE_FIELDS, errors):
            continue
        if not node.get("path"):
            errors.append("%s: invalid device node, empty path" % item)
        if node.get("type", "") not in ("", "b", "c", "u", "p"):
            errors.append("%s: invalid device type %r" % (item, node.get("type")))
        permissions = node.get("permissions", "")
        if permissions not in ("", "none") and (not isinstance(permissions, str) or set(permissions) - set("rwm")):
            errors.append("%s: invalid permissions %r (any of r, w, m)" % (item, permissions))
        if "hostPath" in node:
            _needs(item + ".hostPath", "0.5.0", needed)
    for index, mount in enumerate(edits.get("mounts") or []):
        item = "%s.mounts[%d]" % (where, index)
        if not _unknown(item, mount, _MOUNT_FIELDS, errors):
            continue
        for key in ("hostPath", "containerPath"):
            if not mount.get(key):
                errors.append("%s: %s is required" % (item, key))
        if "type" in mount:
            _needs(item + ".type", "0.4.0", needed)
    for index, hook in enumerate(edits.get("hooks") or []):
        item = "%s.hooks[%d]" % (where, index)
        if not _unknown(item, hook, _HOOK_FIELDS, errors):
            continue
        if hook.get("hookName") not in HOOK_NAMES:
            errors.append(
                "%s: invalid hook name %r (expected %s)" % (item, hook.get("hookName"), ", ".join(HOOK_NAMES))
            )
        if not isinstance(hook.get("path"), str) or not hook["path"].startswith("/"):
            errors.append("%s: path %r must be absolute" % (item, hook.get("path")))
        timeout = hook.get("timeout")
        if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
            errors.append("%s: invalid timeout %r" % (item, timeout))
    if "intelRdt" in edits:
        _unknown(where + ".intelRdt", edits["intelRdt"], _RDT_FIELDS, errors)
        _needs(where + ".intelRdt", "0.7.0", needed)
        if isinstance(edits["intelRdt"], dict) and (
            "schemata" in edits["intelRdt"] or "enableMonitoring" in edits["intelRdt"]
        ):
            _needs(where + ".intelRdt.schemata/enableMonitoring", "1.1.0", needed)
    if "additionalGids" in edits:
        _needs(where + ".additionalGids", "0.7.0", needed)
    for index, netdev in enumerate(edits.get("netDevices") or []):
        _unknown("%s.netDevices[%d]" % (where, index), netdev, _NETDEV_FIELDS, errors)
        _needs(where + ".netDevices", "1.1.0", needed)


def _is_empty_edits(edits):
    return not isinstance(edits, dict) or not any(edits.get(key) for key in _EDIT_FIELDS)


def spec_errors(spec):
    """Every reason the CDI library would refuse ``spec`` (a parsed YAML/JSON mapping); empty when it loads."""
    errors = []
    needed = []
    if not _unknown("spec", spec, _SPEC_FIELDS, errors):
        return errors
    version = spec.get("cdiVersion")
    version_ok = isinstance(version, str) and version.lstrip("v") in VALID_VERSIONS
    if not version_ok:
        errors.append("cdiVersion %r is not one of %s" % (version, ", ".join(VALID_VERSIONS)))
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind.count("/") != 1:
        errors.append("kind %r is not vendor/class" % (kind,))
    else:
        vendor, klass = kind.split("/")
        if not _NAME_PART.match(vendor):
            errors.append("kind %r: invalid vendor %r" % (kind, vendor))
        if not _NAME_PART.match(klass) or len(klass) > 63:
            errors.append("kind %r: invalid class %r" % (kind, klass))
        elif "." in klass:
            _needs("kind (a '.' in the class)", "0.6.0", needed)
    if "annotations" in spec:
        _needs("annotations", "0.6.0", needed)
    if "containerEdits" in spec:
        _edits_errors("containerEdits", spec["containerEdits"], errors, needed)
    devices = spec.get("devices")
    if not isinstance(devices, list) or not devices:
        errors.append("devices: at least one device is required")
        devices = []
    seen = set()
    for index, device in enumerate(devices):
        where = "devices[%d]" % index
        if not _unknown(where, device, _DEVICE_FIELDS, errors):
            continue
        name = device.get("name")
        if not isinstance(name, str) or not _DEVICE_NAME.match(name):
            errors.append("%s: invalid device name %r" % (where, name))
        else:
            if name in seen:
                errors.append("%s: device %r defined twice" % (where, name))
            seen.add(name)
            if name[0].isdigit():
                _needs(where + " (a name starting with a digit)", "0.5.0", needed)
        if "annotations" in device:
            _needs(where + ".annotations", "0.6.0", needed)
        if _is_empty_edits(device.get("containerEdits")):
            errors.append("%s: invalid device, empty device edits" % where)
        else:
            _edits_errors(where + ".containerEdits", device["containerEdits"], errors, needed)
    if version_ok:
        have = _version_tuple(version.lstrip("v"))
        for minimum, where in needed:
            if have < _version_tuple(minimum):
                errors.append("%s: the spec version must be at least v%s (it is %s)" % (where, minimum, version))
    return errors


def device_names(spec):
    """The qualified device names of a spec (``nvidia.com/gpu=0``, ``nvidia.com/gpu=all``)."""
    return ["%s=%s" % (spec.get("kind"), device.get("name")) for device in spec.get("devices") or []]
