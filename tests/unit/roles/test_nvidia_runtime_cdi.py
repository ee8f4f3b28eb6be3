# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nvidia_runtime role's detection and CDI steps, run by Ansible on this machine against a fake GPU node.

There is no GPU and no NVIDIA software here: a fake sysfs tree (a PCI device of vendor 0x10de, a loaded module's
version), a stand-in nvidia-smi and a stand-in nvidia-ctk (it writes the spec it is given and logs each call) are
pointed at through the role's constants. Shown: the spec is generated once, regenerated when the driver or the
GPU/MIG devices change (stale CDI specs are a known pain), and a spec the CDI library would refuse never replaces
the working one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.ansible_env import isolated_ansible_env

ROLE = Path(__file__).resolve().parents[3] / "roles" / "nvidia_runtime"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
TAGS = "nvidia_runtime_preflight,nvidia_runtime_detect,nvidia_runtime_cdi,nvidia_runtime_status"
PLAYBOOK = f"""
- hosts: localhost
  gather_facts: false
  roles:
    - role: {ROLE}
"""
SPEC = {
    "cdiVersion": "0.5.0",
    "kind": "nvidia.com/gpu",
    "devices": [{"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}}],
    "containerEdits": {"deviceNodes": [{"path": "/dev/nvidiactl"}]},
}
FAKE_CTK = """#!/bin/sh
# stand-in for nvidia-ctk: `cdi generate --output=PATH` copies the prepared spec there and logs the call
here=$(dirname "$0")
echo "$*" >> "$here/ctk.log"
out=$(printf '%s\\n' "$@" | sed -n 's/^--output=//p')
cp "$here/spec.yaml" "$out"
"""
FAKE_SMI = """#!/bin/sh
here=$(dirname "$0")
if [ "$1" = -L ]; then cat "$here/smi-L"; else echo '0, NVIDIA A10G, GPU-aaaa, 550.54.15, 23028'; fi
"""


def fake_node(tmp_path: Path, driver: str = "550.54.15") -> Path:
    device = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:01:00.0"
    device.mkdir(parents=True, exist_ok=True)
    (device / "vendor").write_text("0x10de\n", encoding="utf-8")
    other = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:00:02.0"
    other.mkdir(parents=True, exist_ok=True)
    (other / "vendor").write_text("0x8086\n", encoding="utf-8")
    module = tmp_path / "sys" / "module" / "nvidia"
    module.mkdir(parents=True, exist_ok=True)
    (module / "version").write_text(driver + "\n", encoding="utf-8")
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name, body in (("nvidia-ctk", FAKE_CTK), ("nvidia-smi", FAKE_SMI)):
        (bindir / name).write_text(body, encoding="utf-8")
        (bindir / name).chmod(0o755)
    if not (bindir / "smi-L").exists():
        (bindir / "smi-L").write_text("GPU 0: NVIDIA A10G (UUID: GPU-aaaa)\n", encoding="utf-8")
    if not (bindir / "spec.yaml").exists():
        (bindir / "spec.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    return bindir


def run_role(tmp_path: Path) -> subprocess.CompletedProcess:
    bindir = tmp_path / "bin"
    extra = {
        "_nvidia_runtime_sysfs": str(tmp_path / "sys"),
        "_nvidia_runtime_nvidia_smi_paths": [str(bindir / "nvidia-smi")],
        "_nvidia_runtime_nvidia_ctk": str(bindir / "nvidia-ctk"),
        "nvidia_runtime_state_dir": str(tmp_path / "state"),
        "nvidia_runtime_cdi_spec_path": str(tmp_path / "cdi" / "nvidia.yaml"),
        "nvidia_runtime_k3s_data_dir": str(tmp_path / "k3s"),
        "nvidia_runtime_toolkit_install_method": "local_deb",
        "nvidia_runtime_toolkit_deb_files": ["/nonexistent/placeholder.deb"],
        "nvidia_runtime_k8s_render": False,
    }
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
         "-e", "ansible_python_interpreter=" + sys.executable, "--extra-vars", "@" + str(tmp_path / "extra.json"),
         "--tags", TAGS],
        env=isolated_ansible_env(tmp_path / "ansible"),
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def generations(tmp_path: Path) -> int:
    log = tmp_path / "bin" / "ctk.log"
    return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


def changed(result: subprocess.CompletedProcess) -> int:
    line = [line for line in result.stdout.splitlines() if line.startswith("localhost ")][-1]
    return int(line.split("changed=")[1].split()[0])


def test_the_spec_is_generated_once_then_left_alone(tmp_path):
    fake_node(tmp_path)
    first = run_role(tmp_path)
    assert first.returncode == 0, first.stdout[-4000:]
    assert generations(tmp_path) == 1
    assert yaml.safe_load((tmp_path / "cdi" / "nvidia.yaml").read_text(encoding="utf-8")) == SPEC
    assert oct((tmp_path / "cdi" / "nvidia.yaml").stat().st_mode & 0o777) == "0o644"
    status = json.loads((tmp_path / "state" / "status.json").read_text(encoding="utf-8"))
    assert status["gpu_pci_devices"] == ["0000:01:00.0"] and status["driver_version"] == "550.54.15"
    assert status["cdi_spec"] == str(tmp_path / "cdi" / "nvidia.yaml") and status["cdi_skipped"] == ""
    second = run_role(tmp_path)
    assert second.returncode == 0 and changed(second) == 0, second.stdout[-3000:]
    assert generations(tmp_path) == 1


def test_a_driver_change_regenerates_the_stale_spec(tmp_path):
    fake_node(tmp_path)
    assert run_role(tmp_path).returncode == 0
    fake_node(tmp_path, driver="570.86.10")
    result = run_role(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert generations(tmp_path) == 2
    state = json.loads((tmp_path / "state" / "cdi.state").read_text(encoding="utf-8"))
    assert state["driver"] == "570.86.10"


def test_a_mig_reconfiguration_regenerates_the_spec(tmp_path):
    bindir = fake_node(tmp_path)
    assert run_role(tmp_path).returncode == 0
    (bindir / "smi-L").write_text(
        "GPU 0: NVIDIA A100 (UUID: GPU-aaaa)\n  MIG 1g.5gb Device 0: (UUID: MIG-bbbb)\n", encoding="utf-8"
    )
    assert run_role(tmp_path).returncode == 0
    assert generations(tmp_path) == 2


def test_a_spec_the_cdi_library_would_refuse_never_replaces_the_working_one(tmp_path):
    bindir = fake_node(tmp_path)
    assert run_role(tmp_path).returncode == 0
    working = (tmp_path / "cdi" / "nvidia.yaml").read_bytes()
    state = (tmp_path / "state" / "cdi.state").read_bytes()
    (bindir / "spec.yaml").write_text(yaml.safe_dump({**SPEC, "devices": []}), encoding="utf-8")
    fake_node(tmp_path, driver="570.86.10")
    result = run_role(tmp_path)
    assert result.returncode != 0
    assert "localhost: nvidia-ctk generated a CDI spec the CDI library would refuse" in result.stdout
    assert "devices: at least one device is required" in result.stdout
    assert (tmp_path / "cdi" / "nvidia.yaml").read_bytes() == working
    # the state still names the old driver: the next run tries again
    assert (tmp_path / "state" / "cdi.state").read_bytes() == state
