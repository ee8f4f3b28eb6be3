# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nvidia_runtime role run by Ansible on this machine, into temporary directories.

No GPU, no NVIDIA software and no Kubernetes API here: the preflight checks, the containerd template step (into a
temporary k3s data dir) and the k8s manifests are run for real; the manifests are validated against the
Kubernetes schema (strict) with kubernetes-validate, never applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env, make_collection_importable

make_collection_importable()

from ansible_collections.oceanid.fleet.plugins.module_utils import (  # noqa: E402
    nvidia_containerd,
    nvidia_device_plugin,
)

ROLE = Path(__file__).resolve().parents[3] / "roles" / "nvidia_runtime"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
K8S_VERSION = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["nvidia_runtime_k8s_version"]

PLAYBOOK = f"""
- hosts: localhost
  gather_facts: false
  roles:
    - role: {ROLE}
"""


def run_role(tmp_path: Path, extra: dict, tags: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
         "-e", "ansible_python_interpreter=" + sys.executable,
         "--extra-vars", "@" + str(tmp_path / "extra.json"), "--tags", tags, *args],
        env=isolated_ansible_env(tmp_path / "ansible"),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )  # fmt: skip


def base_vars(tmp_path: Path, **more) -> dict:
    return {
        "nvidia_runtime_k3s_data_dir": str(tmp_path / "k3s"),
        "nvidia_runtime_k8s_manifest_dir": str(tmp_path / "manifests"),
        "nvidia_runtime_k8s_host": "localhost",
        "nvidia_runtime_toolkit_install_method": "local_deb",
        "nvidia_runtime_toolkit_deb_files": ["/nonexistent/placeholder.deb"],
        **more,
    }


def recap(result: subprocess.CompletedProcess) -> dict:
    line = [line for line in result.stdout.splitlines() if line.startswith("localhost ")][-1]
    return {k: int(v) for k, v in (part.split("=") for part in line.split(":", 1)[1].split())}


# --- the containerd template -----------------------------------------------------------------------------------


def template_path(tmp_path: Path, version: int = 3) -> Path:
    return tmp_path / "k3s" / "agent" / "etc" / "containerd" / nvidia_containerd.TEMPLATE_NAMES[version]


def test_the_template_is_written_checked_and_stable(tmp_path):
    result = run_role(tmp_path, base_vars(tmp_path), "nvidia_runtime_preflight,nvidia_runtime_containerd")
    assert result.returncode == 0, result.stdout[-4000:]
    written = template_path(tmp_path).read_text(encoding="utf-8")
    assert written == nvidia_containerd.template_text(3)
    assert nvidia_containerd.template_errors(written, 3) == []
    assert oct(template_path(tmp_path).stat().st_mode & 0o777) == "0o600"
    again = run_role(tmp_path, base_vars(tmp_path), "nvidia_runtime_preflight,nvidia_runtime_containerd")
    assert again.returncode == 0 and recap(again)["changed"] == 0, again.stdout[-3000:]


def test_a_template_of_another_tool_is_never_overwritten(tmp_path):
    path = template_path(tmp_path)
    path.parent.mkdir(parents=True)
    foreign = "{{ template \"base\" . }}\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'kata']\n"
    path.write_text(foreign, encoding="utf-8")
    result = run_role(tmp_path, base_vars(tmp_path), "nvidia_runtime_preflight,nvidia_runtime_containerd")
    assert result.returncode != 0
    assert "exists and was not written by this role" in result.stdout and "localhost" in result.stdout
    assert path.read_text(encoding="utf-8") == foreign


def test_version_2_refuses_a_foreign_v3_template_that_would_shadow_it(tmp_path):
    v3 = template_path(tmp_path, 3)
    v3.parent.mkdir(parents=True)
    v3.write_text("# someone else's\n", encoding="utf-8")
    extra = base_vars(tmp_path, nvidia_runtime_containerd_config_version=2)
    result = run_role(tmp_path, extra, "nvidia_runtime_preflight,nvidia_runtime_containerd")
    assert result.returncode != 0
    assert "k3s reads it" in result.stdout
    assert not template_path(tmp_path, 2).exists()
    assert v3.read_text(encoding="utf-8") == "# someone else's\n"


def test_switching_the_version_removes_our_other_template(tmp_path):
    tags = "nvidia_runtime_preflight,nvidia_runtime_containerd"
    assert run_role(tmp_path, base_vars(tmp_path), tags).returncode == 0
    result = run_role(tmp_path, base_vars(tmp_path, nvidia_runtime_containerd_config_version=2), tags)
    assert result.returncode == 0, result.stdout[-3000:]
    assert not template_path(tmp_path, 3).exists()
    assert template_path(tmp_path, 2).read_text(encoding="utf-8") == nvidia_containerd.template_text(2)


def test_a_default_runtime_with_version_2_fails_preflight_naming_the_way_out(tmp_path):
    extra = base_vars(tmp_path, nvidia_runtime_containerd_config_version=2, nvidia_runtime_default_runtime=True)
    result = run_role(tmp_path, extra, "nvidia_runtime_preflight")
    assert result.returncode != 0
    assert "nvidia_runtime_default_runtime" in result.stdout and "default-runtime: nvidia" in result.stdout
    assert not (tmp_path / "k3s").exists()


def test_bad_time_slicing_replicas_fail_preflight(tmp_path):
    result = run_role(tmp_path, base_vars(tmp_path, nvidia_runtime_time_slicing_replicas=1), "nvidia_runtime_preflight")
    assert result.returncode != 0
    assert "localhost: nvidia_runtime_time_slicing_replicas is 1" in result.stdout


# --- the k8s manifests -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_k8s(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("k8s")
    extra = base_vars(
        tmp_path,
        nvidia_runtime_k8s_runtime_class=True,
        nvidia_runtime_time_slicing_replicas=4,
        nvidia_runtime_time_slicing_rename_by_default=True,
        nvidia_runtime_device_plugin_mig_strategy="mixed",
    )
    result = run_role(tmp_path, extra, "nvidia_runtime_preflight,nvidia_runtime_k8s")
    assert result.returncode == 0, result.stdout[-4000:]
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in (tmp_path / "manifests").iterdir()}


def test_every_manifest_is_valid_for_the_clusters_kubernetes_version(rendered_k8s):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    assert set(rendered_k8s) == {
        "runtimeclass.yaml",
        "device-plugin-configmap.yaml",
        "device-plugin-daemonset.yaml",
        "gpu-smoke-job.yaml",
    }
    for name, manifest in rendered_k8s.items():
        # strict: an unknown or misspelt field fails, as `kubectl apply --validate=strict` would
        kubernetes_validate.validate(manifest, f"{K8S_VERSION}.0", strict=True), name


def test_the_device_plugin_runs_with_the_nvidia_runtime_and_its_time_slicing_config(rendered_k8s):
    runtime_class = rendered_k8s["runtimeclass.yaml"]
    assert (runtime_class["metadata"]["name"], runtime_class["handler"]) == ("nvidia", "nvidia")
    pod = rendered_k8s["device-plugin-daemonset.yaml"]["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["containers"][0]["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"
    config = yaml.safe_load(rendered_k8s["device-plugin-configmap.yaml"]["data"]["config.yaml"])
    assert nvidia_device_plugin.config_errors(config) == []
    assert config["version"] == "v1"
    assert config["flags"]["migStrategy"] == "mixed"
    assert config["sharing"]["timeSlicing"] == {
        "renameByDefault": True,
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
    }


def test_the_smoke_job_asks_for_the_shared_resource_and_prints_json(rendered_k8s):
    job = rendered_k8s["gpu-smoke-job.yaml"]["spec"]["template"]["spec"]
    assert job["runtimeClassName"] == "nvidia"
    container = job["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu.shared": 1}
    assert "nvidia-smi --query-gpu=" in container["args"][0] and '\\"gpus\\"' in container["args"][0]


def test_the_smoke_job_script_prints_one_json_line(tmp_path):
    """The Job's shell pipeline, run here with a stand-in nvidia-smi that prints two GPUs in nvidia-smi's CSV form."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\necho '0, NVIDIA A10G, GPU-aaaa, 550.54.15, 23028'\necho '1, NVIDIA A10G, GPU-bbbb, 550.54.15, 23028'\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    extra = base_vars(tmp_path)
    assert run_role(tmp_path, extra, "nvidia_runtime_preflight,nvidia_runtime_k8s").returncode == 0
    job = yaml.safe_load((tmp_path / "manifests" / "gpu-smoke-job.yaml").read_text(encoding="utf-8"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    out = subprocess.run(
        [*container["command"], container["args"][0]],
        capture_output=True, text=True, check=True, env={"PATH": f"{bindir}:/usr/bin:/bin"},
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["ok"] is True
    assert [g["uuid"] for g in report["gpus"]] == ["GPU-aaaa", "GPU-bbbb"]
    assert report["gpus"][0]["memory_mib"] == 23028
