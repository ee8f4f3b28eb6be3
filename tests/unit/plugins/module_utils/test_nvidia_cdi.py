# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CDI spec checks (module_utils/nvidia_cdi.py) against the CDI library's rules, and agreement with the CDI JSON
schema (tests/support/nvidia_specs, cncf-tags/container-device-interface@05ae4b5bb730): every spec the checker
accepts also validates against the schema; the checker is stricter (unknown fields, versions, names)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.nvidia_cdi import device_names, spec_errors

SPECS = Path(__file__).resolve().parents[3] / "support" / "nvidia_specs"

# The shape `nvidia-ctk cdi generate` writes (specs/nvidia-k8s.json nvidia_ctk_cdi_generate.output_facts): one
# device per GPU by index and uuid plus "all", spec-level edits with the driver's libraries and hooks.
GENERATED = {
    "cdiVersion": "0.5.0",
    "kind": "nvidia.com/gpu",
    "devices": [
        {"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}},
        {
            "name": "GPU-5a4b3c2d-0000-1111-2222-333344445555",
            "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]},
        },
        {"name": "all", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}},
    ],
    "containerEdits": {
        "env": ["NVIDIA_VISIBLE_DEVICES=void"],
        "deviceNodes": [{"path": "/dev/nvidiactl"}, {"path": "/dev/nvidia-uvm"}],
        "hooks": [
            {
                "hookName": "createContainer",
                "path": "/usr/bin/nvidia-cdi-hook",
                "args": ["nvidia-cdi-hook", "update-ldcache"],
            }
        ],
        "mounts": [
            {
                "hostPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
                "containerPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
                "options": ["ro", "nosuid", "nodev", "bind"],
            }
        ],
    },
}


@pytest.fixture(name="schema_validator", scope="module")
def fixture_schema_validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SPECS / "cdi-schema.json").read_text(encoding="utf-8"))
    defs = json.loads((SPECS / "cdi-defs.json").read_text(encoding="utf-8"))
    # schema.json refers to "defs.json#/definitions/..."; defs.json refers to itself with "#/definitions/..."
    text = json.dumps(schema).replace('"defs.json#/definitions/', '"#/definitions/')
    merged = json.loads(text)
    merged["definitions"] = defs["definitions"]
    jsonschema.Draft7Validator.check_schema(merged)
    return jsonschema.Draft7Validator(merged)


def test_a_generated_spec_loads_and_passes_the_schema(schema_validator):
    assert spec_errors(GENERATED) == []
    assert list(schema_validator.iter_errors(GENERATED)) == []
    assert device_names(GENERATED)[-1] == "nvidia.com/gpu=all"


def broken(change):
    spec = copy.deepcopy(GENERATED)
    change(spec)
    return spec


CASES = {
    "unknown field": (lambda s: s.update(extra=1), "unknown field 'extra'"),
    "unknown version": (lambda s: s.update(cdiVersion="2.0.0"), "cdiVersion '2.0.0' is not one of"),
    "kind without class": (lambda s: s.update(kind="nvidia.com"), "is not vendor/class"),
    "no devices": (lambda s: s.update(devices=[]), "at least one device"),
    "duplicate device": (lambda s: s["devices"].append(copy.deepcopy(s["devices"][0])), "defined twice"),
    "empty edits": (lambda s: s["devices"][0].update(containerEdits={}), "empty device edits"),
    "bad hook": (lambda s: s["containerEdits"]["hooks"][0].update(hookName="preStart"), "invalid hook name"),
    "relative hook": (lambda s: s["containerEdits"]["hooks"][0].update(path="nvidia-cdi-hook"), "must be absolute"),
    "digit name below 0.5.0": (lambda s: s.update(cdiVersion="0.4.0"), "at least v0.5.0"),
    "annotations below 0.6.0": (lambda s: s.update(annotations={"a": "b"}), "at least v0.6.0"),
    "bad permissions": (
        lambda s: s["containerEdits"]["deviceNodes"][0].update(permissions="rx"),
        "invalid permissions",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_what_the_cdi_library_refuses_is_reported(case):
    change, message = CASES[case]
    errors = spec_errors(broken(change))
    assert any(message in error for error in errors), errors


def test_the_schema_alone_misses_unknown_fields_which_the_checker_catches(schema_validator):
    spec = broken(lambda s: s["devices"][0]["containerEdits"].update(deviceNode=[{"path": "/dev/nvidia1"}]))
    assert list(schema_validator.iter_errors(spec)) == []
    assert any("unknown field 'deviceNode'" in error for error in spec_errors(spec))
