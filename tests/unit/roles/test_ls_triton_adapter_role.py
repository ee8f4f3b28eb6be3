# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ls_triton_adapter role's rendered files, by Ansible from the role's own tasks, templates and variables.

Host mode: the role's configure tasks write the environment file and the unit into a temporary directory (the
unit through the role's own ``systemd-analyze verify`` validation). k8s mode: no Kubernetes API server is
reachable here, so the manifests the role renders are validated strictly against the Kubernetes schema of the
cluster's version with kubernetes-validate (as tests/unit/roles/test_seaweedfs_k8s.py does), and read back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "ls_triton_adapter"
APP = ROLE / "files" / "ls_triton_adapter.py"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
K8S_VERSION = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))[
    "ls_triton_adapter_k8s_version"
]
SECRET = 'cf-s3cret-$HOME-`id`-"q"-\\back'


def run_playbook(tmp_path: Path, env: dict, playbook: str, extra: dict, *args: str) -> subprocess.CompletedProcess:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "play.yml"
    path.write_text(playbook, encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(path), "--extra-vars", json.dumps(extra), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


CONFIGURE = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: {ROLE}
        tasks_from: configure.yml
"""

# The role's main dispatch, limited to the configure step (the environment file, the unit and, when the
# Cloudflare Access variables are given, the credentials file); no systemd, apt or pip here.
MAIN_CONFIGURE = f"""
- hosts: localhost
  gather_facts: false
  roles:
    - role: {ROLE}
"""

# The cf_access entry point alone (what the edge layer of playbooks/site.yml calls after a create or rotate).
CF_ACCESS = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: {ROLE}
        tasks_from: cf_access
"""


def sourced(*files: Path) -> dict[str, str]:
    """The environment systemd builds from these EnvironmentFiles, in order (sh reads the same quoting)."""
    script = "set -a; " + " ".join(f'. "${i + 1}";' for i in range(len(files))) + " env -0"
    out = subprocess.run(
        ["/bin/sh", "-c", script, "sh", *map(str, files)], capture_output=True, check=True, env={}
    ).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    env.pop("PWD", None)  # the shell's own
    return env


def host_extra(tmp_path: Path, **overrides) -> dict:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        (venv / "bin" / "python").symlink_to(sys.executable)
    return {
        "ansible_python_interpreter": sys.executable,
        "ls_triton_adapter_venv": str(venv),
        "ls_triton_adapter_home": str(tmp_path / "home"),
        "ls_triton_adapter_config_dir": str(tmp_path / "etc"),
        "ls_triton_adapter_systemd_dir": str(tmp_path / "systemd"),
        "__ls_triton_adapter_restart": False,  # no systemd here: the notified restart is not run
        **overrides,
    }


@pytest.fixture(name="rendered", scope="module")
def fixture_rendered(tmp_path_factory):
    from tests.support.ansible_env import isolated_ansible_env

    tmp_path = tmp_path_factory.mktemp("host")
    (tmp_path / "systemd").mkdir()
    extra = host_extra(
        tmp_path,
        ls_triton_adapter_triton_url="https://gpu.example.com/triton",
        ls_triton_adapter_bind_address="0.0.0.0",
        ls_triton_adapter_cf_access_client_id="abc.access",
        ls_triton_adapter_cf_access_client_secret=SECRET,
        ls_triton_adapter_label_studio_api_key="ls-token-123",
    )
    result = run_playbook(
        tmp_path, isolated_ansible_env(tmp_path), MAIN_CONFIGURE, extra, "-vvv", "--tags", "ls_triton_adapter_configure"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path, result.stdout + result.stderr


def test_environment_file_is_0600_and_holds_the_settings_as_a_shell_reads_them(rendered):
    tmp_path = rendered[0]
    env_file, cf_file = tmp_path / "etc" / "env", tmp_path / "etc" / "cf-access.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    assert oct(cf_file.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "etc").stat().st_mode & 0o777) == "0o700"
    # systemd's EnvironmentFile and sh agree on "..." with \\ \" \$ \` escapes (systemd 252: env-file.c)
    assert not [
        name for name in sourced(env_file) if name.startswith("CF_ACCESS")
    ]  # the token only in its own file, which runs without it keep
    assert sourced(cf_file) == {"CF_ACCESS_CLIENT_ID": "abc.access", "CF_ACCESS_CLIENT_SECRET": SECRET}
    env = sourced(env_file, cf_file)
    assert env["TRITON_BASE_URL"] == "https://gpu.example.com/triton"
    assert env["CF_ACCESS_CLIENT_ID"] == "abc.access"
    assert env["CF_ACCESS_CLIENT_SECRET"] == SECRET
    assert env["LABEL_STUDIO_API_KEY"] == "ls-token-123"
    assert env["BIND"] == "0.0.0.0" and env["PORT"] == "9090"
    assert env["LS_TRITON_ADAPTER_MODEL"] == "docling_granite_python"
    assert env["LS_TRITON_ADAPTER_HEALTH_TIMEOUT"] == "0.5"


def test_the_app_reads_that_environment(rendered):
    tmp_path = rendered[0]
    out = subprocess.run(
        [
            "/bin/sh",
            "-c",
            'set -a; . "$0"; . "$4"; exec "$1" -c "$2" "$3"',
            str(tmp_path / "etc" / "env"),
            sys.executable,
            "import importlib.util as u, sys; s = u.spec_from_file_location('a', sys.argv[1]); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); c = m.Config.from_env(); "
            "print(c.triton_target, c.triton_ssl, c.port, c.bind, c.workers, c.inference_timeout, c.triton_headers() != {})",
            str(APP),
            str(tmp_path / "etc" / "cf-access.env"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["gpu.example.com:443/triton", "True", "9090", "0.0.0.0", "8", "60.0", "True"]


def test_no_secret_in_the_verbose_output(rendered):
    output = rendered[1]
    for secret in ("cf-s3cret", "ls-token-123"):
        assert secret not in output


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_unit_was_verified_and_runs_the_venvs_python_as_the_service_user(rendered):
    tmp_path = rendered[0]
    unit = (tmp_path / "systemd" / "ls-triton-adapter.service").read_text(encoding="utf-8")
    lines = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert lines["ExecStart"] == f"{tmp_path}/venv/bin/python {tmp_path}/home/ls_triton_adapter.py"
    assert lines["User"] == "ls-triton-adapter"
    # the settings, then the credentials file (optional: "-"), which overrides them
    assert [line for line in unit.splitlines() if line.startswith("EnvironmentFile=")] == [
        f"EnvironmentFile={tmp_path}/etc/env",
        f"EnvironmentFile=-{tmp_path}/etc/cf-access.env",
    ]
    assert lines["ProtectSystem"] == "strict" and lines["NoNewPrivileges"] == "true"
    assert "cf-s3cret" not in unit
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "systemd" / "ls-triton-adapter.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


def test_a_unit_that_does_not_verify_is_not_written(tmp_path, clean_ansible_env):
    (tmp_path / "systemd").mkdir()
    extra = host_extra(tmp_path, ls_triton_adapter_venv=str(tmp_path / "no-venv"))
    result = run_playbook(tmp_path, clean_ansible_env, CONFIGURE, extra)
    assert result.returncode != 0
    assert "no-venv/bin/python" in result.stdout + result.stderr
    assert not (tmp_path / "systemd" / "ls-triton-adapter.service").exists()


def test_cf_access_entry_point_writes_only_the_credentials_file_and_only_on_change(tmp_path, clean_ansible_env):
    cf_file = tmp_path / "etc" / "cf-access.env"
    base = host_extra(tmp_path)

    def deliver(client_id: str, secret: str) -> subprocess.CompletedProcess:
        extra = {
            **base,
            "ls_triton_adapter_cf_access_client_id": client_id,
            "ls_triton_adapter_cf_access_client_secret": secret,
        }
        return run_playbook(tmp_path, clean_ansible_env, CF_ACCESS, extra, "-vvv")

    first = deliver("abc.access", SECRET)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=2" in first.stdout  # the directory and the file; no unit here, so no restart
    assert oct(cf_file.stat().st_mode & 0o777) == "0o600"
    assert sourced(cf_file) == {"CF_ACCESS_CLIENT_ID": "abc.access", "CF_ACCESS_CLIENT_SECRET": SECRET}
    assert not (tmp_path / "etc" / "env").exists()  # nothing but the token
    again = deliver("abc.access", SECRET)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout
    rotated = deliver("abc.access", "rotated-s3cret")
    assert rotated.returncode == 0 and "changed=1" in rotated.stdout, rotated.stdout
    assert sourced(cf_file)["CF_ACCESS_CLIENT_SECRET"] == "rotated-s3cret"
    for result in (first, again, rotated):
        output = result.stdout + result.stderr
        assert "cf-s3cret" not in output and "rotated-s3cret" not in output

    missing = deliver("abc.access", "")
    assert missing.returncode != 0
    assert "ls_triton_adapter_cf_access_client_secret (empty) must both be set" in missing.stdout
    assert sourced(cf_file)["CF_ACCESS_CLIENT_SECRET"] == "rotated-s3cret"  # the delivered token kept


def test_a_run_without_the_token_keeps_the_delivered_one(rendered, clean_ansible_env):
    tmp_path = rendered[0]
    before = (tmp_path / "etc" / "cf-access.env").read_bytes()
    result = run_playbook(
        tmp_path / "again",
        clean_ansible_env,
        MAIN_CONFIGURE,
        host_extra(
            tmp_path,
            ls_triton_adapter_triton_url="https://gpu.example.com/triton",
            ls_triton_adapter_bind_address="0.0.0.0",
            ls_triton_adapter_label_studio_api_key="ls-token-123",
        ),
        "--tags",
        "ls_triton_adapter_configure",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed=0" in result.stdout, result.stdout
    assert (tmp_path / "etc" / "cf-access.env").read_bytes() == before


PREFLIGHT = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: {ROLE}
        tasks_from: preflight.yml
"""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"ls_triton_adapter_triton_url": "calypso:8000"},
            "ls_triton_adapter_triton_url=calypso:8000 is not http(s)://host",
        ),
        (
            {"ls_triton_adapter_cf_access_client_secret": "only-secret"},
            "ls_triton_adapter_cf_access_client_id and ls_triton_adapter_cf_access_client_secret must be set together",
        ),
        ({"ls_triton_adapter_health_timeout": 2}, "ls_triton_adapter_health_timeout=2 must be > 0 and < 1"),
        ({"ls_triton_adapter_port": 70000}, "ls_triton_adapter_port=70000 is not a TCP port"),
    ],
)
def test_bad_settings_fail_naming_the_host_and_the_variable(tmp_path, clean_ansible_env, overrides, message):
    result = run_playbook(
        tmp_path, clean_ansible_env, PREFLIGHT, {"ansible_python_interpreter": sys.executable, **overrides}, "-vvv"
    )
    assert result.returncode != 0
    assert f"localhost: bad ls_triton_adapter settings: {message}" in result.stdout
    assert "only-secret" not in result.stdout + result.stderr


# --- k8s mode -----------------------------------------------------------------------------------------------------

K8S = f"""
- hosts: localhost
  gather_facts: false
  roles:
    - role: {ROLE}
"""


def render_k8s(tmp_path: Path, env: dict, *args: str, **overrides) -> tuple[dict[str, dict], str]:
    extra = {
        "ansible_python_interpreter": sys.executable,
        "ls_triton_adapter_mode": "k8s",
        "ls_triton_adapter_k8s_host": "localhost",
        "ls_triton_adapter_k8s_manifest_dir": str(tmp_path / "manifests"),
        "ls_triton_adapter_triton_url": "https://gpu.example.com",
        "ls_triton_adapter_cf_access_client_id": "abc.access",
        "ls_triton_adapter_cf_access_client_secret": SECRET,
        **overrides,
    }
    result = run_playbook(tmp_path, env, K8S, extra, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    manifests = {
        path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in (tmp_path / "manifests").iterdir()
    }
    return manifests, result.stdout + result.stderr


@pytest.fixture(name="manifests", scope="module")
def fixture_manifests(tmp_path_factory):
    from tests.support.ansible_env import isolated_ansible_env

    tmp_path = tmp_path_factory.mktemp("k8s")
    return render_k8s(tmp_path, isolated_ansible_env(tmp_path), "-vvv")


def test_every_manifest_is_valid_for_the_clusters_kubernetes_version(manifests):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    rendered = manifests[0]
    assert set(rendered) == {
        "namespace.yaml",
        "configmap.yaml",
        "secret.yaml",
        "cf-access-secret.yaml",
        "deployment.yaml",
        "service.yaml",
    }
    for manifest in rendered.values():
        kubernetes_validate.validate(manifest, f"{K8S_VERSION}.0", strict=True)
    broken = json.loads(json.dumps(rendered["deployment.yaml"]))
    broken["spec"]["template"]["spec"]["containers"][0]["port"] = 9090  # a misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, f"{K8S_VERSION}.0", strict=True)


def test_the_seeds_service_url_and_the_app_from_the_configmap(manifests):
    rendered = manifests[0]
    service, deployment = rendered["service.yaml"], rendered["deployment.yaml"]
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == ("ls-triton-adapter", "apps")
    assert service["spec"]["ports"] == [{"name": "http", "port": 9090, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert rendered["configmap.yaml"]["data"] == {"ls_triton_adapter.py": APP.read_text(encoding="utf-8")}
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "/app/ls_triton_adapter.py"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["TRITON_BASE_URL"] == "https://gpu.example.com" and env["BIND"] == "0.0.0.0" and env["PORT"] == "9090"
    assert env["PYTHONPATH"] == "/deps"
    assert container["envFrom"] == [
        {"secretRef": {"name": "ls-triton-adapter"}},
        {"secretRef": {"name": "ls-triton-adapter-cf-access", "optional": True}},
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    init = pod["initContainers"][0]
    assert init["command"][:8] == [
        "python",
        "-m",
        "pip",
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--target",
        "/deps",
    ]
    assert "tritonclient[http]==2.73.0" in init["command"]


def test_secrets_are_only_in_the_secret_and_never_printed(manifests):
    rendered, output = manifests
    assert rendered["cf-access-secret.yaml"]["stringData"] == {
        "CF_ACCESS_CLIENT_ID": "abc.access",
        "CF_ACCESS_CLIENT_SECRET": SECRET,
    }
    assert rendered["cf-access-secret.yaml"]["metadata"]["name"] == "ls-triton-adapter-cf-access"
    assert rendered["secret.yaml"]["stringData"] == {}  # no Label Studio token given
    for name, manifest in rendered.items():
        if name != "cf-access-secret.yaml":
            assert "cf-s3cret" not in json.dumps(manifest), name
    assert "cf-s3cret" not in output


def test_a_changed_setting_rolls_the_pods_and_a_ready_made_image_needs_no_init_container(tmp_path, clean_ansible_env):
    first = render_k8s(tmp_path / "a", clean_ansible_env)[0]
    second = render_k8s(
        tmp_path / "b", clean_ansible_env, ls_triton_adapter_k8s_pip_install=False, ls_triton_adapter_model="other"
    )[0]
    annotation = "oceanid.fleet/config-sha256"
    assert (
        first["deployment.yaml"]["spec"]["template"]["metadata"]["annotations"][annotation]
        != second["deployment.yaml"]["spec"]["template"]["metadata"]["annotations"][annotation]
    )
    pod = second["deployment.yaml"]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert "PYTHONPATH" not in {item["name"] for item in pod["containers"][0]["env"]}


def test_k8s_without_the_token_renders_no_cf_access_secret_and_the_entry_point_renders_only_it(
    tmp_path, clean_ansible_env
):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    plain = render_k8s(
        tmp_path / "plain",
        clean_ansible_env,
        ls_triton_adapter_cf_access_client_id="",
        ls_triton_adapter_cf_access_client_secret="",
    )[0]
    assert "cf-access-secret.yaml" not in plain
    manifest_dir = tmp_path / "entry" / "manifests"
    extra = {
        "ansible_python_interpreter": sys.executable,
        "ls_triton_adapter_mode": "k8s",
        "ls_triton_adapter_k8s_host": "localhost",
        "ls_triton_adapter_k8s_manifest_dir": str(manifest_dir),
        "ls_triton_adapter_cf_access_client_id": "abc.access",
        "ls_triton_adapter_cf_access_client_secret": SECRET,
    }
    result = run_playbook(tmp_path / "entry", clean_ansible_env, CF_ACCESS, extra, "-vvv")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cf-s3cret" not in result.stdout + result.stderr
    assert [path.name for path in manifest_dir.iterdir()] == ["cf-access-secret.yaml"]
    assert oct((manifest_dir / "cf-access-secret.yaml").stat().st_mode & 0o777) == "0o600"
    secret = yaml.safe_load((manifest_dir / "cf-access-secret.yaml").read_text(encoding="utf-8"))
    kubernetes_validate.validate(secret, f"{K8S_VERSION}.0", strict=True)
    assert secret["stringData"]["CF_ACCESS_CLIENT_SECRET"] == SECRET
