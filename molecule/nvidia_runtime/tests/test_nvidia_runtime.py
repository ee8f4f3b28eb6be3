# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The converged NVIDIA runtime on nv-gpu (molecule/nvidia_runtime), checked with pytest-testinfra.

The lab host has no GPU, no NVIDIA software and no k3s: the toolkit is a placeholder package, detection reports no
GPU (and the role, told not to require one, configures the node anyway), no CDI spec is generated, and the
manifests are rendered, not applied. What is checked: the placeholder at the pinned version, the containerd
template byte for byte and through our expansion check (as k3s would expand it), the status file, the manifests
(strict Kubernetes schema), a foreign template refused and left byte-identical, and a required GPU refused.
converge.yml is run again with other inputs through --extra-vars.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

testinfra_hosts = ["nv-gpu"]

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
DEFAULTS = yaml.safe_load((REPO / "roles/nvidia_runtime/defaults/main.yml").read_text(encoding="utf-8"))
TEMPLATE = "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl"
MANIFESTS = "/var/lib/oceanid/nvidia-manifests"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "plugins/module_utils" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nvidia_containerd = _load("nvidia_containerd")
nvidia_device_plugin = _load("nvidia_device_plugin")


def converge_with(request, tmp_path: Path, extra: dict, succeed: bool = True) -> str:
    inventory = request.config.getoption("ansible_inventory")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    argv = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "--inventory",
        inventory,
        str(SCENARIO / "converge.yml"),
        "--extra-vars",
        "@" + str(tmp_path / "extra.json"),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600, env=os.environ.copy())
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # molecule forces colour
    assert (result.returncode == 0) == succeed, output[-3000:]
    return " ".join(output.split())


def test_the_pinned_placeholder_toolkit_is_installed_and_says_what_it_is(host):
    assert host.package("nvidia-container-toolkit").version == DEFAULTS["nvidia_runtime_toolkit_version"]
    ctk = host.run("/usr/bin/nvidia-ctk cdi generate --output=/tmp/x.yaml")
    assert ctk.rc == 1 and "placeholder" in ctk.stderr


def test_the_template_is_ours_and_expands_to_a_sound_config(host):
    template = host.file(TEMPLATE)
    assert template.exists and template.user == "root" and template.mode == 0o600
    content = template.content_string
    assert content == nvidia_containerd.template_text(3)
    assert content.startswith("# " + nvidia_containerd.MARKER)
    # as k3s would expand it: with and without the runtime found at start, with and without k3s default-runtime
    assert nvidia_containerd.template_errors(content, 3) == []
    assert not host.file("/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl").exists


def test_no_gpu_was_found_and_cdi_was_skipped_with_the_reason(host):
    status = json.loads(host.file("/var/lib/oceanid/nvidia-runtime/status.json").content_string)
    assert status["gpu_pci_devices"] == [] and status["driver_version"] == ""
    assert status["cdi_skipped"] == "no NVIDIA GPU" and status["cdi_spec"] == ""
    assert status["toolkit_version"] == DEFAULTS["nvidia_runtime_toolkit_version"]
    assert not host.file("/etc/cdi/nvidia.yaml").exists


def test_the_manifests_are_rendered_and_valid(host):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    names = sorted(host.file(MANIFESTS).listdir())
    assert names == ["device-plugin-configmap.yaml", "device-plugin-daemonset.yaml", "gpu-smoke-job.yaml"]
    manifests = {name: yaml.safe_load(host.file(f"{MANIFESTS}/{name}").content_string) for name in names}
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, DEFAULTS["nvidia_runtime_k8s_version"] + ".0", strict=True)
    config = yaml.safe_load(manifests["device-plugin-configmap.yaml"]["data"]["config.yaml"])
    assert nvidia_device_plugin.config_errors(config) == []
    assert config["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert manifests["device-plugin-daemonset.yaml"]["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    job = manifests["gpu-smoke-job.yaml"]["spec"]["template"]["spec"]
    assert job["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu.shared": 1}


def test_a_foreign_template_is_refused_and_left_byte_identical(host, request, tmp_path):
    foreign = '{{ template "base" . }}\n# another tool\'s template\n'
    with host.sudo():
        host.run_test("cp -p %s /root/nvidia-template.ours", TEMPLATE)
        host.run_test("printf '%%s' %s > %s", foreign, TEMPLATE)
        before = host.file(TEMPLATE).sha256sum
    try:
        output = converge_with(request, tmp_path, {}, succeed=False)
        assert f"nv-gpu: {TEMPLATE} exists and was not written by this role" in output
        with host.sudo():
            assert host.file(TEMPLATE).sha256sum == before
            assert host.file(TEMPLATE).content_string == foreign
    finally:
        with host.sudo():
            host.run_test("cp -p /root/nvidia-template.ours %s && rm -f /root/nvidia-template.ours", TEMPLATE)
    # the restored template is ours again: a plain run changes nothing
    output = converge_with(request, tmp_path, {})
    recap = re.search(r"nv-gpu : ok=\d+ changed=(\d+)", output)
    assert recap and recap.group(1) == "0", output[output.find("PLAY RECAP") :][:600]


def test_a_required_gpu_that_is_absent_fails_naming_the_host(request, tmp_path):
    output = converge_with(request, tmp_path, {"nvidia_runtime_require_gpu": True}, succeed=False)
    assert "nv-gpu: no NVIDIA GPU (no PCI device of vendor 0x10de" in output
    assert "nvidia_runtime_require_gpu is true" in output
