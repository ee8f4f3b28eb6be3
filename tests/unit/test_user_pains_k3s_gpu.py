# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One test per pain of the k3s and GPU sections of the shared requirements' user-pains.md (Idempotence and
restarts, Upgrades and tokens, Air-gapped installs, GPU runtime on k3s/containerd), each named after the pain and
showing, with the real role or playbook code run by ansible-playbook on this machine, that it cannot happen here.

Nothing here runs k3s, containerd's CRI, a Kubernetes API or NVIDIA software: the k3s binary is a placeholder
script, the role steps that would write under /etc, /var/lib, /var/cache or /usr/local/lib run inside a private
mount namespace (`unshare -m`) whose overlays are thrown away, and the playbooks' API steps are not reached.
A test whose role part is not written yet is xfail(strict=True) with the reason "role part not written yet: ...";
once the part exists the test runs for real.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env

ROOT = Path(__file__).resolve().parents[2]
K3S = ROOT / "roles" / "k3s"
NVIDIA = ROOT / "roles" / "nvidia_runtime"
UPGRADE = ROOT / "playbooks" / "k3s_upgrade.yml"
RESET = ROOT / "playbooks" / "k3s_reset.yml"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
PLACEHOLDER_VERSION = "v1.31.6+k3s1"


def missing(*parts: Path) -> bool:
    return not all(p.exists() for p in parts)


def role_part(*parts: Path, what: str):
    """xfail(strict) while a role part this test exercises does not exist yet; a plain test once it does."""
    return pytest.mark.xfail(missing(*parts), reason=f"role part not written yet: {what}", strict=True)


def fake_k3s(directory: Path, version: str = PLACEHOLDER_VERSION) -> Path:
    """A placeholder k3s: answers --version like a release build (and says it is a placeholder); nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "k3s"
    path.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "k3s version {version} (placeholder)"; '
        'echo "oceanid test placeholder, not k3s"; exit 0; fi\nexit 1\n',
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


def inventory(tmp_path: Path, servers=("s1",), agents=(), **hostvars) -> Path:
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars}
    inv = {
        "all": {
            "children": {
                "k3s_servers": {"hosts": {name: dict(host) for name in servers}},
                "k3s_agents": {"hosts": {name: dict(host) for name in agents}},
            }
        }
    }
    path = tmp_path / "inventory" / "hosts.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(inv), encoding="utf-8")
    return path


def playbook(tmp_path: Path, tasks: list, hosts: str = "k3s_servers:k3s_agents") -> Path:
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"hosts": hosts, "gather_facts": True, "tasks": tasks}]), encoding="utf-8")
    return path


def run(tmp_path: Path, play: Path, inv: Path, extra: dict, *args: str, sandbox: bool = False):
    """ansible-playbook in the tests' isolated environment; with sandbox, inside a throwaway mount namespace."""
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    env = isolated_ansible_env(tmp_path / "ansible")
    command = [ANSIBLE_PLAYBOOK, "-i", str(inv), str(play), "-e", "@" + str(tmp_path / "extra.json"), *args]
    if sandbox:
        overlays = []
        sandbox_dir = tmp_path / f"sandbox{len(list(tmp_path.glob('sandbox*')))}"
        for n, lower in enumerate(["/etc", "/var/lib", "/var/cache", "/usr/local/lib", "/run"]):
            upper, work = sandbox_dir / str(n) / "u", sandbox_dir / str(n) / "w"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            overlays.append(f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} {lower}")
        script = " && ".join(overlays + ['exec "$@"'])
        command = ["unshare", "-m", "sh", "-c", script, "sandbox", *command]
    out = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    out.flat = " ".join((out.stdout + out.stderr).split())
    return out


def recap(out) -> dict:
    """host -> {'ok': n, 'changed': n, 'failed': n, ...} from the PLAY RECAP."""
    hosts = {}
    for line in out.stdout.splitlines():
        if " : ok=" in line:
            name, counts = line.split(" : ", 1)
            hosts[name.strip()] = {k: int(v) for k, v in (c.split("=") for c in counts.split())}
    return hosts


def artifacts(tmp_path: Path) -> Path:
    """A local artifact directory as k3s releases it: k3s, sha256sum-amd64.txt, the airgap images tarball."""
    directory = tmp_path / "artifacts"
    fake_k3s(directory)
    (directory / "k3s-airgap-images-amd64.tar.zst").write_bytes(b"placeholder images, not a k3s release\n")
    sums = "".join(
        f"{hashlib.sha256((directory / name).read_bytes()).hexdigest()}  {name}\n"
        for name in ("k3s", "k3s-airgap-images-amd64.tar.zst")
    )
    (directory / "sha256sum-amd64.txt").write_text(sums, encoding="utf-8")
    return directory


def k3s_vars(tmp_path: Path, **overrides) -> dict:
    (tmp_path / "bin").mkdir(exist_ok=True)
    return {
        "k3s_version": PLACEHOLDER_VERSION,
        "k3s_install_method": "local",
        "k3s_artifact_dir": str(artifacts(tmp_path)),
        "k3s_binary_dir": str(tmp_path / "bin"),
        "k3s_token_file": str(tmp_path / "inventory" / ".k3s-token"),
        "k3s_kubeconfig_dest": "",
        "k3s_service_state": "stopped",
        **overrides,
    }


def k3s_role_tasks(tasks_from: str) -> list:
    return [{"ansible.builtin.include_role": {"name": "oceanid.fleet.k3s", "tasks_from": tasks_from}}]


def render_filter(tmp_path: Path, expression: str, extra: dict | None = None, pre_tasks: list | None = None) -> object:
    """Evaluate a Jinja expression (the roles' filter plugins) with ansible on localhost; returns its JSON value."""
    play = tmp_path / "filter.yml"
    dest = tmp_path / "filter.json"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": (pre_tasks or [])
                    + [
                        {
                            "ansible.builtin.copy": {
                                "content": "{{ (" + expression + ") | to_json }}",
                                "dest": str(dest),
                                "mode": "0644",
                            }
                        }
                    ],
                }
            ]
        ),
        encoding="utf-8",
    )
    (tmp_path / "extra.json").write_text(json.dumps(extra or {}), encoding="utf-8")
    env = isolated_ansible_env(tmp_path / "ansible")
    out = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         "-e", "@" + str(tmp_path / "extra.json"), str(play)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(dest.read_text(encoding="utf-8"))


def role_manifests(tmp_path: Path, **overrides) -> list[dict]:
    """The nvidia_runtime role's k8s templates rendered by ansible's template lookup after the role's preflight (which
    builds the device plugin config); the role's defaults plus overrides."""
    preflight = [
        {
            "ansible.builtin.include_role": {
                "name": "oceanid.fleet.nvidia_runtime",
                "tasks_from": "preflight",
                "public": True,
            }
        }
    ]
    docs = []
    for name in ("runtimeclass", "device-plugin-configmap", "device-plugin-daemonset"):
        template = NVIDIA / "templates" / "k8s" / f"{name}.yaml.j2"
        text = render_filter(tmp_path, f"lookup('ansible.builtin.template', '{template}')", overrides, preflight)
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


# --- Idempotence and restarts ----------------------------------------------------------------------------------


@role_part(K3S / "tasks" / "install.yml", K3S / "tasks" / "preflight.yml", what="k3s tasks/install.yml")
def test_k3s_ansible_564_install_step_not_changed_on_rerun(tmp_path):
    """k3s-ansible #564: the install step reported changed on every run. Here the second install changes nothing."""
    inv = inventory(tmp_path)
    play = playbook(tmp_path, k3s_role_tasks("preflight") + k3s_role_tasks("install"))
    extra = k3s_vars(tmp_path)
    first = run(tmp_path, play, inv, extra, sandbox=True)
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first)["s1"]["changed"] > 0
    # a first install and a re-run in one sandbox (its overlays last one ansible-playbook run): the second install
    # step reports nothing changed
    play = playbook(tmp_path, k3s_role_tasks("preflight") + k3s_role_tasks("install") * 2)
    (tmp_path / "bin2").mkdir()
    both = run(tmp_path, play, inv, k3s_vars(tmp_path, k3s_binary_dir=str(tmp_path / "bin2")), sandbox=True)
    assert both.returncode == 0, both.stdout + both.stderr
    installs = both.stdout.split("Install k3s")
    assert len(installs) >= 3
    assert "changed:" not in installs[-1].split("PLAY RECAP")[0], installs[-1]


@role_part(K3S / "handlers" / "main.yml", K3S / "tasks" / "service.yml", what="k3s handlers/service")
def test_k3s_ansible_564_first_server_not_restarted_on_rerun(tmp_path):
    """k3s-ansible #564: the first server was restarted on every run. The only restart is the handler topic
    `k3s : restart k3s`, notified by tasks that report a change, never run unconditionally."""
    handlers = yaml.safe_load((K3S / "handlers" / "main.yml").read_text(encoding="utf-8"))
    restarts = [h for h in handlers if "restarted" in json.dumps(h)]
    assert restarts and all(h.get("listen") == "k3s : restart k3s" for h in restarts)
    for task_file in (K3S / "tasks").glob("*.yml"):
        for task in yaml.safe_load(task_file.read_text(encoding="utf-8")) or []:
            text = json.dumps(task)
            if '"state": "restarted"' in text:
                assert "when" in task, f"{task_file.name}: {task.get('name')} restarts without a condition"


@role_part(K3S / "tasks" / "preflight.yml", what="k3s tasks/preflight.yml (config.yaml key check)")
def test_k3s_ansible_344_482_malformed_config_refused_before_restart(tmp_path):
    """k3s-ansible #344/#482: a malformed config followed by a restart took clusters down. An unknown config.yaml key
    fails preflight, naming the key and the host, before anything is written."""
    inv = inventory(tmp_path)
    play = playbook(tmp_path, k3s_role_tasks("preflight"))
    out = run(tmp_path, play, inv, k3s_vars(tmp_path, k3s_server_config={"no-such-flag": True}))
    assert out.returncode != 0
    assert "no-such-flag" in out.flat and "s1" in out.flat
    assert not (tmp_path / "bin" / "k3s").exists()


def test_kubespray_1601_deepops_no_command_hides_real_changes():
    """kubespray #1601 / DeepOps: helm and other changing commands run through `command` with `changed_when: false`.
    In the k3s/GPU code a command with `changed_when: false` is a read-only probe: its command is not one that changes
    anything (apply, install, import, generate, restart, delete, create, helm, rm)."""
    files = [UPGRADE, RESET, *sorted((ROOT / "playbooks" / "tasks").glob("k3s_*.yml"))]
    files += sorted(p for role in (K3S, NVIDIA) for p in (role / "tasks").glob("*.yml"))
    mutating = (" apply", " install", " import", " generate", " restart", " delete", " create", "helm ", " rm ")

    def tasks_of(node):
        if isinstance(node, list):
            for item in node:
                yield from tasks_of(item)
        elif isinstance(node, dict):
            if any(k in node for k in ("ansible.builtin.command", "ansible.builtin.shell")):
                yield node
            for key in ("tasks", "block", "rescue", "always"):
                yield from tasks_of(node.get(key))

    probes = 0
    for path in files:
        for task in tasks_of(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if task.get("changed_when") is False:
                probes += 1
                body = json.dumps(task.get("ansible.builtin.command") or task.get("ansible.builtin.shell"))
                assert not any(word in " " + body for word in mutating), f"{path.name}: {task['name']}: {body}"
    assert probes > 0


# --- Upgrades and tokens ---------------------------------------------------------------------------------------


def test_k3s_ansible_476_504_upgrade_never_enables_k3s_on_agents(tmp_path):
    """k3s-ansible #476/#504: the upgrade playbook enabled k3s.service on agents. Ours never enables a unit, names
    k3s-agent for agents, refuses an agent where k3s.service is enabled before changing anything, and checks again
    after each agent's upgrade."""
    text = UPGRADE.read_text(encoding="utf-8") + (ROOT / "playbooks/tasks/k3s_upgrade_node.yml").read_text("utf-8")
    assert "enabled: true" not in text and "enabled: yes" not in text
    assert "'k3s' if _k3s_upgrade_is_server else 'k3s-agent'" in text
    systemd = tmp_path / "systemd"
    (systemd / "multi-user.target.wants").mkdir(parents=True)
    (systemd / "multi-user.target.wants" / "k3s.service").symlink_to("../k3s.service")
    inv = inventory(tmp_path, servers=("s1",), agents=("a1",))
    extra = {
        "k3s_version": "v1.31.7+k3s1",
        "k3s_upgrade_bin_dir": str(fake_k3s(tmp_path / "bin").parent),
        "k3s_upgrade_systemd_dir": str(systemd),
    }
    out = run(tmp_path, UPGRADE, inv, extra)
    assert out.returncode != 0
    assert "a1 is in k3s_agents but k3s.service (the server unit) is enabled" in out.flat
    assert recap(out)["a1"]["changed"] == 0 and recap(out)["s1"]["changed"] == 0


@role_part(K3S / "tasks" / "token_check.yml", what="k3s tasks/token_check.yml")
def test_k3s_ansible_490_token_never_changed_by_rerun(tmp_path):
    """k3s-ansible #490: "bootstrap data already found and encrypted with different token". A token different from
    the one kept on the controller fails preflight unless k3s_token_rotate; reset never removes the kept token."""
    inv = inventory(tmp_path)
    token_file = tmp_path / "inventory" / ".k3s-token"
    token_file.write_text("kept-token-0123456789\n", encoding="utf-8")
    token_file.chmod(0o600)
    play = playbook(tmp_path, k3s_role_tasks("preflight"))
    out = run(tmp_path, play, inv, k3s_vars(tmp_path, k3s_token="another-token-9876543210"))
    assert out.returncode != 0
    assert "k3s_token_rotate" in out.flat
    assert "another-token-9876543210" not in out.stdout + out.stderr
    assert "kept-token-0123456789" not in out.stdout + out.stderr
    assert token_file.read_text(encoding="utf-8") == "kept-token-0123456789\n"


def test_no_anchor_cordons_or_drains_before_upgrading(tmp_path):
    """No k3s anchor cordons/drains before upgrading. Ours drains (Eviction API, so PodDisruptionBudgets hold) before
    the install step, waits for Ready on the new version, uncordons; servers one at a time, agents in batches, the
    first failure stops the run; a downgrade is refused before any node is touched."""
    plays = yaml.safe_load(UPGRADE.read_text(encoding="utf-8"))
    assert plays[0]["any_errors_fatal"] is True
    assert plays[1]["serial"] == 1 and plays[1]["max_fail_percentage"] == 0
    assert plays[2]["serial"] == "{{ k3s_upgrade_agent_batch | default(1) }}" and plays[2]["max_fail_percentage"] == 0
    node = yaml.safe_load((ROOT / "playbooks/tasks/k3s_upgrade_node.yml").read_text(encoding="utf-8"))
    steps = [t for block in node for t in (block.get("block") or [block])]
    modules = [next(k for k in t if "." in k and not k.startswith("_")) for t in steps]
    order = [
        modules.index("kubernetes.core.k8s_drain"),
        modules.index("ansible.builtin.include_role"),
        modules.index("kubernetes.core.k8s_info", modules.index("ansible.builtin.include_role")),
        len(modules) - 1 - modules[::-1].index("kubernetes.core.k8s_drain"),
    ]
    assert order == sorted(order)
    drain = steps[modules.index("kubernetes.core.k8s_drain")]
    assert drain["kubernetes.core.k8s_drain"]["state"] == "drain"
    assert drain["vars"]["_options"]["disable_eviction"] is False
    # a downgrade stops preflight on every host: nothing changed
    inv = inventory(tmp_path, servers=("s1", "s2"), agents=("a1",))
    extra = {"k3s_version": "v1.31.0+k3s1", "k3s_upgrade_bin_dir": str(fake_k3s(tmp_path / "bin").parent)}
    out = run(tmp_path, UPGRADE, inv, extra)
    assert out.returncode != 0 and "That is a downgrade, refused" in out.flat
    assert all(r["changed"] == 0 for r in recap(out).values())


# --- Air-gapped installs -----------------------------------------------------------------------------------------


@role_part(K3S / "tasks" / "install_local.yml", what="k3s tasks/install_local.yml")
def test_k3s_ansible_393_airgapped_install_needs_no_internet(tmp_path):
    """k3s-ansible #393: "airgapped install is not airgapped". With k3s_install_method=local the install step reads
    only the artifact directory: with every proxy pointing at a closed port, it installs the checked binary."""
    inv = inventory(tmp_path)
    play = playbook(tmp_path, k3s_role_tasks("preflight") + k3s_role_tasks("install"))
    extra = k3s_vars(tmp_path)
    dead = "http://127.0.0.1:9"
    extra["k3s_environment"] = {}
    play_env_tasks = yaml.safe_load(play.read_text(encoding="utf-8"))
    play_env_tasks[0]["environment"] = {
        "http_proxy": dead,
        "https_proxy": dead,
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
    }
    play.write_text(yaml.safe_dump(play_env_tasks), encoding="utf-8")
    out = run(tmp_path, play, inv, extra, sandbox=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "bin" / "k3s").read_bytes() == (tmp_path / "artifacts" / "k3s").read_bytes()
    for name in ("install_local.yml", "install.yml"):
        assert "get_url" not in (K3S / "tasks" / name).read_text(encoding="utf-8")


@role_part(K3S / "tasks" / "install_local.yml", what="k3s tasks/install_local.yml")
def test_k3s_ansible_517_airgap_artifacts_checked_before_copy(tmp_path):
    """k3s-ansible #517: agents could not start in air-gapped installs (missing images or binary). The local install
    refuses an artifact whose checksum is not the one in sha256sum-amd64.txt, before copying anything."""
    inv = inventory(tmp_path, servers=(), agents=("a1",))
    extra = k3s_vars(tmp_path)
    (Path(extra["k3s_artifact_dir"]) / "k3s-airgap-images-amd64.tar.zst").write_bytes(b"tampered\n")
    play = playbook(tmp_path, k3s_role_tasks("install"))
    play_doc = yaml.safe_load(play.read_text(encoding="utf-8"))
    play_doc[0]["tasks"].insert(0, {"ansible.builtin.set_fact": {"__k3s_unit": "k3s-agent", "__k3s_is_server": False}})
    play.write_text(yaml.safe_dump(play_doc), encoding="utf-8")
    out = run(tmp_path, play, inv, extra, sandbox=True)
    assert out.returncode != 0
    assert "k3s-airgap-images-amd64.tar.zst has sha256" in out.flat and "refused" in out.flat
    assert not (tmp_path / "bin" / "k3s").exists()


@role_part(NVIDIA / "tasks" / "install_local_deb.yml", what="nvidia_runtime tasks/install_local_deb.yml")
def test_deepops_1239_gpu_runtime_installs_without_internet():
    """DeepOps dropped air-gap support (#1239). The nvidia_runtime role installs the toolkit from local .deb files
    (nvidia_runtime_toolkit_install_method: local_deb) with no repository or download."""
    defaults = yaml.safe_load((NVIDIA / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert "nvidia_runtime_toolkit_deb_files" in defaults
    text = (NVIDIA / "tasks" / "install_local_deb.yml").read_text(encoding="utf-8")
    assert "get_url" not in text and "apt_repository" not in text and "deb822_repository" not in text


# --- GPU runtime on k3s/containerd -------------------------------------------------------------------------------


@role_part(NVIDIA / "tasks" / "containerd.yml", what="nvidia_runtime tasks/containerd.yml")
def test_kubespray_12277_gpu_rerun_never_overwrites_another_tools_containerd_config(tmp_path):
    """kubespray #12277: a re-run overwrote the GPU Operator's containerd config. A template without the role's
    marker stops the role, naming it, and is left as it was."""
    data_dir = tmp_path / "k3s-data"
    template_dir = data_dir / "agent" / "etc" / "containerd"
    template_dir.mkdir(parents=True)
    foreign = template_dir / "config-v3.toml.tmpl"
    foreign.write_text("# written by the GPU Operator\nversion = 3\n", encoding="utf-8")
    inv = inventory(tmp_path, servers=(), agents=("a1",))
    play = playbook(
        tmp_path,
        [{"ansible.builtin.include_role": {"name": "oceanid.fleet.nvidia_runtime", "tasks_from": "containerd"}}],
    )
    play_doc = yaml.safe_load(play.read_text(encoding="utf-8"))
    play_doc[0]["tasks"].insert(
        0, {"ansible.builtin.set_fact": {"__nvidia_runtime_template": "# Managed by oceanid.fleet nvidia_runtime\n"}}
    )
    play.write_text(yaml.safe_dump(play_doc), encoding="utf-8")
    out = run(tmp_path, play, inv, {"nvidia_runtime_k3s_data_dir": str(data_dir)})
    assert out.returncode != 0
    assert str(foreign) in out.flat
    assert foreign.read_text(encoding="utf-8") == "# written by the GPU Operator\nversion = 3\n"


@role_part(
    NVIDIA / "templates" / "k8s" / "device-plugin-daemonset.yaml.j2", what="nvidia_runtime device plugin manifests"
)
def test_k8s_device_plugin_406_device_plugin_runs_with_runtime_class_nvidia(tmp_path):
    """k8s-device-plugin #406 (k3s #8248, #4391, #7130): on k3s the device plugin itself needs
    `runtimeClassName: nvidia`, and the RuntimeClass must exist with handler nvidia."""
    docs = role_manifests(tmp_path, nvidia_runtime_k8s_runtime_class=True)
    daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
    assert daemonset["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
    runtime_class = next(d for d in docs if d["kind"] == "RuntimeClass")
    assert runtime_class["metadata"]["name"] == "nvidia" and runtime_class["handler"] == "nvidia"


@role_part(ROOT / "plugins" / "filter" / "nvidia.py", what="nvidia_runtime containerd template filter")
def test_k3s_9702_default_runtime_nvidia_when_asked(tmp_path):
    """k3s #9702 (`--default-runtime nvidia`): with nvidia_runtime_default_runtime the expanded containerd config
    makes nvidia the CRI default runtime; without it runc stays the default."""
    expr = "3 | oceanid.fleet.nvidia_containerd_template('nvidia', '/usr/bin/nvidia-container-runtime', {})"
    on, off = render_filter(tmp_path, expr.format("true")), render_filter(tmp_path, expr.format("false"))
    assert 'default_runtime_name = "nvidia"' in on
    assert 'default_runtime_name = "nvidia"' not in off
    check = "oceanid.fleet.nvidia_containerd_template_errors(3, default_runtime=true)"
    assert render_filter(tmp_path, f"({expr.format('true')}) | {check}") == []


@role_part(ROOT / "plugins" / "filter" / "nvidia.py", what="nvidia_runtime containerd template check")
def test_data_miner_seed_containerd_template_keeps_cni_paths(tmp_path):
    """The data-miner seed's node went NotReady after a config.toml.tmpl without CNI bin_dir/conf_dir. The role's
    template, expanded as k3s expands it, keeps the CNI paths (the check reports no error), and a template without
    them is reported."""
    args = (
        "runtime_name='nvidia', binary_name='/usr/bin/nvidia-container-runtime', default_runtime=false, expect_cni=true"
    )
    template = "(3 | oceanid.fleet.nvidia_containerd_template('nvidia', '/usr/bin/nvidia-container-runtime', false))"
    assert render_filter(tmp_path, f"{template} | oceanid.fleet.nvidia_containerd_template_errors(3, {args})") == []
    broken = f"{template} | regex_replace('(?m)^.*template \"base\".*$', '')"  # the seed's template: no base
    errors = render_filter(tmp_path, f"({broken}) | oceanid.fleet.nvidia_containerd_template_errors(3, {args})")
    assert any("cni" in e.lower() for e in errors), errors


FAKE_NVIDIA_CTK = """#!/bin/sh
# A stand-in for nvidia-ctk: `cdi generate --output=F` writes a small valid spec and logs the call.
echo "$@" >> "$(dirname "$0")/nvidia-ctk.log"
for a in "$@"; do case "$a" in --output=*) out="${a#--output=}";; esac; done
cat > "$out" <<SPEC
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/nvidia0
containerEdits:
  env:
    - NVIDIA_VISIBLE_DEVICES=void
SPEC
"""


@role_part(NVIDIA / "tasks" / "cdi.yml", what="nvidia_runtime tasks/cdi.yml")
def test_nvidia_container_toolkit_856_cdi_spec_refreshed_after_driver_change(tmp_path):
    """nvidia-container-toolkit #856/#1239/#1828: CDI specs go stale after driver/kernel/MIG changes. The role keeps
    the driver, kernel and toolkit the spec was generated for and regenerates it when one changes, not otherwise."""
    ctk = tmp_path / "ctk" / "nvidia-ctk"
    ctk.parent.mkdir()
    ctk.write_text(FAKE_NVIDIA_CTK, encoding="utf-8")
    ctk.chmod(0o755)
    inv = inventory(tmp_path, servers=(), agents=("a1",))
    tasks = [
        {"ansible.builtin.include_role": {"name": "oceanid.fleet.nvidia_runtime", "tasks_from": "cdi"}},
    ]
    play = playbook(tmp_path, tasks)
    play_doc = yaml.safe_load(play.read_text(encoding="utf-8"))
    play_doc[0]["gather_facts"] = False
    play.write_text(yaml.safe_dump(play_doc), encoding="utf-8")

    def generate(driver: str):
        extra = {
            "_nvidia_runtime_nvidia_ctk": str(ctk),
            "nvidia_runtime_state_dir": str(tmp_path / "state"),
            "nvidia_runtime_cdi_spec_path": str(tmp_path / "cdi" / "nvidia.yaml"),
            "__nvidia_runtime_gpu_devices": ["0000:01:00.0"],
            "__nvidia_runtime_driver_version": driver,
            "__nvidia_runtime_kernel": {"stdout": "6.1.0-28-amd64"},
        }
        out = run(tmp_path, play, inv, extra)
        assert out.returncode == 0, out.stdout + out.stderr
        log = tmp_path / "ctk" / "nvidia-ctk.log"
        return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0

    assert generate("550.127.05") == 1
    assert (tmp_path / "cdi" / "nvidia.yaml").exists()
    assert generate("550.127.05") == 1  # same driver and kernel: the spec is kept
    assert generate("560.35.03") == 2  # a new driver: the spec is generated again


@role_part(ROOT / "plugins" / "filter" / "nvidia.py", what="nvidia_runtime device plugin config filter")
def test_k8s_device_plugin_461_time_slicing_replicas_configured_right(tmp_path):
    """k8s-device-plugin #461/#990/#1786: time-slicing multiplies capacity only when configured right (and isolates no
    memory). The rendered ConfigMap carries sharing.timeSlicing with the replicas and renameByDefault asked for, and
    a replica count the plugin refuses (1) fails the role's preflight check."""
    docs = role_manifests(
        tmp_path, nvidia_runtime_time_slicing_replicas=4, nvidia_runtime_time_slicing_rename_by_default=True
    )
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    config = yaml.safe_load(next(iter(configmap["data"].values())))
    slicing = config["sharing"]["timeSlicing"]
    assert slicing["renameByDefault"] is True
    assert [r["replicas"] for r in slicing["resources"]] == [4]


@role_part(
    K3S / "tasks" / "cluster.yml", ROOT / "plugins" / "filter" / "k3s.py", what="k3s labels/taints through the API"
)
def test_k3s_node_labels_taints_reconciled_not_only_at_registration(tmp_path):
    """k3s node labels/taints given as flags apply only at registration: later changes silently do nothing. The role
    reconciles them on every run through the API (kubernetes.core.k8s with the patch of the k3s_node_patch filter):
    a node registered with an old label gets the new value and the taint, and an up-to-date node is not patched."""
    tasks = (K3S / "tasks" / "cluster.yml").read_text(encoding="utf-8")
    assert "kubernetes.core.k8s" in tasks and "oceanid.fleet.k3s_node_patch(k3s_node_labels, k3s_node_taints)" in tasks
    registered = {"metadata": {"name": "gpu1", "labels": {"gpu": "old"}}, "spec": {}}
    ask = "oceanid.fleet.k3s_node_patch({'gpu': 'a100'}, ['gpu=true:NoSchedule'])"
    change = render_filter(tmp_path, f"node | {ask}", {"node": registered})
    assert change["changed"] is True
    assert "a100" in json.dumps(change) and "NoSchedule" in json.dumps(change)
    # the node after the API applied that merge patch
    patch = change["patch"]
    converged = json.loads(json.dumps(registered))
    meta = patch.get("metadata", {})
    labels = {**converged["metadata"]["labels"], **meta.get("labels", {})}
    converged["metadata"]["labels"] = {k: v for k, v in labels.items() if v is not None}
    converged["metadata"]["annotations"] = meta.get("annotations", {})
    converged["spec"].update(patch.get("spec", {}))
    again = render_filter(tmp_path, f"node | {ask}", {"node": converged})
    assert again["changed"] is False, (converged, again)


# --- The reset keeps what the kept token protects (#490) and is idempotent --------------------------------------


def test_k3s_ansible_490_reset_keeps_data_and_token_unless_wiped(tmp_path):
    """Reset without k3s_reset_wipe_data keeps the datastore, server/token and the etcd snapshots (and the controller's
    token file), so the k3s role brings the same cluster back with the same token; a second reset changes nothing."""
    root = tmp_path / "node"
    for d in ("bin", "systemd/multi-user.target.wants", "etc", "data/server/db/snapshots", "kubelet", "cni", "run/k3s"):
        (root / d).mkdir(parents=True)
    fake_k3s(root / "bin")
    (root / "bin" / "kubectl").symlink_to("k3s")
    (root / "bin" / "crictl").write_text("not k3s's\n", encoding="utf-8")
    (root / "systemd" / "k3s.service").write_text("[Service]\n", encoding="utf-8")
    (root / "systemd" / "k3s.service.env").write_text("K3S_X=1\n", encoding="utf-8")
    (root / "systemd" / "multi-user.target.wants" / "k3s.service").symlink_to("../k3s.service")
    (root / "data" / "server" / "token").write_text("K10abc::server:secret\n", encoding="utf-8")
    (root / "data" / "server" / "db" / "snapshots" / "etcd-snapshot-1").write_text("snap\n", encoding="utf-8")
    inv = inventory(tmp_path)
    (tmp_path / "inventory" / ".k3s-token").write_text("secret\n", encoding="utf-8")
    extra = {
        "k3s_reset_bin_dir": str(root / "bin"),
        "k3s_reset_data_dir": str(root / "data"),
        "k3s_reset_config_dir": str(root / "etc"),
        "k3s_reset_systemd_dir": str(root / "systemd"),
        "k3s_reset_kubelet_dir": str(root / "kubelet"),
        "k3s_reset_cni_dir": str(root / "cni"),
        "k3s_reset_run_dirs": [str(root / "run/k3s")],
    }
    skip = ("--skip-tags", "k3s_reset_systemd,k3s_reset_runtime")  # no systemd, no real network/mounts touched here
    refused = run(tmp_path, RESET, inv, {**extra, "k3s_reset_confirm": "yes"}, *skip)
    assert refused.returncode != 0 and "k3s_reset_confirm must be the cluster's name, 's1'" in refused.flat
    assert (root / "bin" / "k3s").exists()
    first = run(tmp_path, RESET, inv, {**extra, "k3s_reset_confirm": "s1"}, *skip)
    assert first.returncode == 0, first.stdout + first.stderr
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == [
        "bin", "bin/crictl", "data", "data/server", "data/server/db", "data/server/db/snapshots",
        "data/server/db/snapshots/etcd-snapshot-1", "data/server/token", "kubelet", "run", "systemd",
        "systemd/multi-user.target.wants",
    ]  # fmt: skip
    assert (tmp_path / "inventory" / ".k3s-token").read_text(encoding="utf-8") == "secret\n"
    second = run(tmp_path, RESET, inv, {**extra, "k3s_reset_confirm": "s1"}, *skip)
    assert second.returncode == 0 and recap(second)["s1"]["changed"] == 0
    wiped = run(tmp_path, RESET, inv, {**extra, "k3s_reset_confirm": "s1", "k3s_reset_wipe_data": True}, *skip)
    assert wiped.returncode == 0 and not (root / "data").exists() and not (root / "kubelet").exists()
    assert (tmp_path / "inventory" / ".k3s-token").exists()
