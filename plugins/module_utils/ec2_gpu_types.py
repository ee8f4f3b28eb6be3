# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""GPU facts of EC2 instance types, without an API call.

The inventory plugin ``oceanid.fleet.fleet`` and the ``ec2_gpu_*`` modules use it; other collections may too
(``gpu_facts``, ``is_gpu_family``, ``validate_extra_types`` and ``GPU_FAMILIES`` are its interface).

The table is DescribeInstanceTypes' ``GpuInfo`` for the families the fleet rents (g4dn, g5, g6, g6e,
gr6, p4d, p4de, p5, p5e, p5en): GPU model, GPUs per instance and memory per GPU in MiB, as AWS reports
it (so an L4 has 22888 MiB, not the 24 GB of the data sheet). Sizes that AWS does not sell are absent.
Fractional-GPU types (g6f) are left out on purpose: they have no whole GPU.
"""

import re

# family -> (model, memory per GPU in MiB, {size: GPUs per instance})
_SINGLE_TO_16X = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1}
GPU_FAMILIES = {
    "g4dn": ("T4", 16384, dict(_SINGLE_TO_16X, **{"12xlarge": 4, "metal": 8})),
    "g5": ("A10G", 22888, dict(_SINGLE_TO_16X, **{"12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    "g6": ("L4", 22888, dict(_SINGLE_TO_16X, **{"12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    "g6e": ("L40S", 45776, dict(_SINGLE_TO_16X, **{"12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    "gr6": ("L4", 22888, {"4xlarge": 1, "8xlarge": 1}),
    "p4d": ("A100", 40960, {"24xlarge": 8}),
    "p4de": ("A100", 81920, {"24xlarge": 8}),
    "p5": ("H100", 81920, {"4xlarge": 1, "48xlarge": 8}),
    "p5e": ("H200", 144384, {"48xlarge": 8}),
    "p5en": ("H200", 144384, {"48xlarge": 8}),
}

_TYPE_RE = re.compile(r"^([a-z][a-z0-9-]*)\.([a-z0-9]+)$")


def _facts(instance_type, model, memory_mib, count):
    return {
        "instance_type": instance_type,
        "vendor": "nvidia",
        "model": model,
        "count": count,
        "memory_mib": memory_mib,
        "memory_gib": round(memory_mib / 1024.0, 1),
        "total_memory_mib": memory_mib * count,
    }


def gpu_facts(instance_type, extra_types=None):
    """GPU facts of an instance type, or None for a type without (known) GPUs.

    ``extra_types`` maps instance types to ``{model, count, memory_mib}`` (new sizes or families); it
    takes precedence over the built-in table. A returned dictionary has ``instance_type``, ``vendor``,
    ``model``, ``count``, ``memory_mib`` (per GPU), ``memory_gib`` (per GPU, one decimal) and
    ``total_memory_mib``.
    """
    if not instance_type:
        return None
    if extra_types and instance_type in extra_types:
        entry = extra_types[instance_type]
        return _facts(instance_type, entry["model"], int(entry["memory_mib"]), int(entry["count"]))
    match = _TYPE_RE.match(instance_type)
    if not match:
        return None
    family, size = match.groups()
    known = GPU_FAMILIES.get(family)
    if not known or size not in known[2]:
        return None
    model, memory_mib, sizes = known
    return _facts(instance_type, model, memory_mib, sizes[size])


def is_gpu_family(instance_type):
    """True when the type belongs to a family of the table (even a size the table does not know)."""
    match = _TYPE_RE.match(instance_type or "")
    return bool(match) and match.group(1) in GPU_FAMILIES


def validate_extra_types(extra_types):
    """Return a list of problems with a user's ``gpu_types`` mapping (empty when it is valid)."""
    problems = []
    if not isinstance(extra_types, dict):
        return ["gpu_types must be a mapping of instance type to {model, count, memory_mib}"]
    for name, entry in extra_types.items():
        if not isinstance(entry, dict):
            problems.append("gpu_types.%s must be a mapping with model, count and memory_mib" % name)
            continue
        unknown = sorted(set(entry) - {"model", "count", "memory_mib"})
        if unknown:
            problems.append(
                "gpu_types.%s: unknown key(s) %s; expected model, count, memory_mib" % (name, ", ".join(unknown))
            )
        missing = sorted({"model", "count", "memory_mib"} - set(entry))
        if missing:
            problems.append("gpu_types.%s: missing %s" % (name, ", ".join(missing)))
            continue
        for key in ("count", "memory_mib"):
            try:
                if int(entry[key]) < 0:
                    raise ValueError()
            except (TypeError, ValueError):
                problems.append("gpu_types.%s.%s must be a non-negative integer, got %r" % (name, key, entry[key]))
    return problems
