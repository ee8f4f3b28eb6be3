# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cloudflared_node role's preflight and configure steps, run by Ansible on this machine into a temporary directory.

cloudflared itself is not available here: a fake "real" binary (it answers --version like a release build and
records each `tunnel --config F ingress validate`) stands in to show when the role lets cloudflared check
config.yaml, and a fake placeholder shows that the lab's placeholder package is never taken for cloudflared. The
user/group tasks are skipped (the files are owned by root here) and the connector is never started.
k8s mode (at the end): the manifests validated against the Kubernetes schema, never applied.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "cloudflared_node"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))

ACCOUNT = "0123456789abcdef0123456789abcdef"
TUNNEL_ID = "6f1b0c6e-3c1a-4f8e-9d52-2a7be3c0f915"
SECRET = base64.b64encode(bytes(range(100, 132))).decode()
CREDENTIALS = {"AccountTag": ACCOUNT, "TunnelSecret": SECRET, "TunnelID": TUNNEL_ID, "Endpoint": ""}
TUNNEL_TOKEN = base64.b64encode(json.dumps({"a": ACCOUNT, "t": TUNNEL_ID, "s": SECRET}).encode()).decode()
CREDENTIALS_JSON = json.dumps(CREDENTIALS, indent=2)
CREDENTIALS_B64 = base64.b64encode(CREDENTIALS_JSON.encode()).decode()
GPU_RULE = {"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"}

PLAYBOOK = f"""
- hosts: localhost
  gather_facts: false
  roles:
    - role: {ROLE}
"""

REAL_CLOUDFLARED = """#!/bin/sh
# A stand-in for a release build of cloudflared: --version, and `tunnel --config F ingress validate` (logged).
if [ "$1" = "--version" ]; then echo "cloudflared version 2025.11.1 (built 2025-11-14-1200 UTC)"; exit 0; fi
if [ "$1" = tunnel ] && [ "$2" = --config ] && [ "$4" = ingress ] && [ "$5" = validate ]; then
    echo "$3" >> "$(dirname "$0")/validated.log"
    if grep -q refuse-me "$3"; then echo "Validation failed: refused by the fake cloudflared"; exit 1; fi
    echo "Validating rules from $3"; echo OK; exit 0
fi
exit 1
"""
PLACEHOLDER = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "cloudflared version 2025.11.1 (oceanid placeholder: NOT cloudflared)"; exit 0; fi
echo "placeholder" >> "$(dirname "$0")/validated.log"
exit 1
"""


def fake_binary(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "bin" / "cloudflared"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
    return path


def extra_vars(tmp_path: Path, binary: Path, **overrides) -> dict:
    return {
        "ansible_python_interpreter": sys.executable,
        "cloudflared_node_tunnel_token": TUNNEL_TOKEN,
        "cloudflared_node_ingress": [GPU_RULE],
        "cloudflared_node_binary": str(binary),
        "cloudflared_node_user": "root",
        "cloudflared_node_group": "root",
        "cloudflared_node_config_dir": str(tmp_path / "etc"),
        "cloudflared_node_systemd_dir": str(tmp_path / "systemd"),
        "cloudflared_node_home": str(tmp_path / "home"),
        "cloudflared_node_service_state": "stopped",  # no systemd here: a notified restart is never run
        "cloudflared_node_service_enabled": False,
        "cloudflared_node_install_method": "local_deb",  # the install step is not run here; preflight wants a file
        "cloudflared_node_deb_path": __file__,
        **overrides,
    }


def run_role(tmp_path: Path, env: dict, extra: dict, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
         "--extra-vars", "@" + str(tmp_path / "extra.json"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )  # fmt: skip


def configure(tmp_path: Path, env: dict, extra: dict, *args: str) -> subprocess.CompletedProcess:
    """Preflight and configure only (no install, no service); the user and group tasks skipped (root owns the files)."""
    (tmp_path / "systemd").mkdir(parents=True, exist_ok=True)
    return run_role(
        tmp_path, env, extra, "--tags", "cloudflared_node_preflight,cloudflared_node_configure",
        "--skip-tags", "cloudflared_node_user", *args,
    )  # fmt: skip


def flat(result: subprocess.CompletedProcess) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.fixture(name="rendered", scope="module")
def fixture_rendered(tmp_path_factory):
    from tests.support.ansible_env import isolated_ansible_env

    tmp_path = tmp_path_factory.mktemp("host")
    binary = fake_binary(tmp_path, REAL_CLOUDFLARED)
    result = configure(tmp_path, isolated_ansible_env(tmp_path), extra_vars(tmp_path, binary), "-vvv")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    return tmp_path, result


def test_config_yaml_routes_the_gpu_host_and_ends_with_the_catch_all(rendered):
    tmp_path = rendered[0]
    config = yaml.safe_load((tmp_path / "etc" / "config.yaml").read_text(encoding="utf-8"))
    assert config == {
        "tunnel": TUNNEL_ID,
        "credentials-file": f"{tmp_path}/etc/{TUNNEL_ID}.json",
        "protocol": "auto",
        "loglevel": "info",
        "ingress": [GPU_RULE, {"service": "http_status:404"}],
    }
    assert oct((tmp_path / "etc" / "config.yaml").stat().st_mode & 0o777) == "0o640"
    assert oct((tmp_path / "etc").stat().st_mode & 0o777) == "0o750"


def test_the_token_becomes_the_credentials_file_0600(rendered):
    credentials = rendered[0] / "etc" / f"{TUNNEL_ID}.json"
    assert json.loads(credentials.read_text(encoding="utf-8")) == CREDENTIALS
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    assert not list((rendered[0] / "etc").glob("*.pem"))


def test_the_real_binary_validated_the_file_it_wrote(rendered):
    tmp_path = rendered[0]
    log = (tmp_path / "bin" / "validated.log").read_text(encoding="utf-8").split()
    assert len(log) == 1 and log[0] != str(tmp_path / "etc" / "config.yaml")  # the temporary file, before the move


def test_no_secret_in_the_verbose_output(rendered):
    output = rendered[1].stdout + rendered[1].stderr
    assert "tunnel_token" in output  # the detected form is shown
    for secret in (SECRET, TUNNEL_TOKEN):
        assert secret not in output


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_unit_was_verified_and_runs_the_seeds_command(rendered):
    tmp_path = rendered[0]
    unit = (tmp_path / "systemd" / "cloudflared-node.service").read_text(encoding="utf-8")
    lines = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert lines["ExecStart"] == (
        f"{tmp_path}/bin/cloudflared --no-autoupdate --config {tmp_path}/etc/config.yaml --metrics 127.0.0.1:20241 tunnel run"
    )
    assert lines["Restart"] == "on-failure" and lines["Type"] == "notify" and lines["User"] == "root"
    assert lines["ProtectSystem"] == "strict" and lines["NoNewPrivileges"] == "true"
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "systemd" / "cloudflared-node.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


@pytest.mark.parametrize(
    "token", [CREDENTIALS_B64, CREDENTIALS_JSON], ids=["credentials-json-base64", "credentials-json"]
)
def test_the_other_token_forms_give_the_same_files(tmp_path, clean_ansible_env, token):
    binary = fake_binary(tmp_path, REAL_CLOUDFLARED)
    first = configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary))
    assert first.returncode == 0, flat(first)[-3000:]
    credentials = tmp_path / "etc" / f"{TUNNEL_ID}.json"
    before = (credentials.read_bytes(), credentials.stat().st_mtime_ns)
    again = configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary, cloudflared_node_tunnel_token=token))
    assert again.returncode == 0 and "changed=0" in again.stdout, flat(again)[-3000:]
    assert (credentials.read_bytes(), credentials.stat().st_mtime_ns) == before
    assert "credentials_json" in again.stdout and SECRET not in flat(again)


def test_credentials_of_another_tunnel_are_removed(tmp_path, clean_ansible_env):
    binary = fake_binary(tmp_path, REAL_CLOUDFLARED)
    (tmp_path / "etc").mkdir()
    stale = tmp_path / "etc" / "0b0c6e6f-1a3c-4e8f-952d-c0f9152a7be3.json"
    stale.write_text("{}", encoding="utf-8")
    kept = tmp_path / "etc" / "notes.json"
    kept.write_text("{}", encoding="utf-8")
    result = configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary))
    assert result.returncode == 0, flat(result)[-3000:]
    assert not stale.exists() and kept.exists() and (tmp_path / "etc" / f"{TUNNEL_ID}.json").exists()


def test_rules_ending_with_a_catch_all_get_none_appended(tmp_path, clean_ansible_env):
    binary = fake_binary(tmp_path, REAL_CLOUDFLARED)
    rules = [GPU_RULE, {"hostname": "*", "service": "http_status:403"}]
    result = configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary, cloudflared_node_ingress=rules))
    assert result.returncode == 0, flat(result)[-3000:]
    assert yaml.safe_load((tmp_path / "etc" / "config.yaml").read_text(encoding="utf-8"))["ingress"] == rules


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"cloudflared_node_ingress": [GPU_RULE], "cloudflared_node_ingress_catch_all": ""},
            "Rule #1: The last ingress rule must match all URLs",
        ),
        (
            {"cloudflared_node_ingress": [{"hostname": "gpu.oceanid.example", "service": "http://localhost:8000/api"}]},
            "Rule #1: http://localhost:8000/api is an invalid address, ingress rules don't support proxying to a different path",
        ),
        (
            {"cloudflared_node_ingress": [{"service": "http://localhost:8000"}, GPU_RULE]},
            "Rule #1 is matching the hostname",
        ),
        (
            {"cloudflared_node_tunnel_token": "-----BEGIN ARGO TUNNEL TOKEN-----\nc2VjcmV0\n-----END ARGO TUNNEL TOKEN-----\n"},
            "this is an origin certificate (cert.pem",
        ),
        ({"cloudflared_node_tunnel_token": ""}, "cloudflared_node_tunnel_token is empty"),
        ({"cloudflared_node_install_method": "deb_url", "cloudflared_node_deb_url": "https://example.invalid/c.deb"},
         "cloudflared_node_install_method=deb_url needs cloudflared_node_deb_sha256"),
        ({"cloudflared_node_extra_config": {"tunnel": "other"}}, "cloudflared_node_extra_config may not set tunnel"),
    ],
    ids=["no-catch-all-last", "service-with-a-path", "catch-all-first", "cert-pem-as-token", "no-token", "deb-url-without-sha256",
         "reserved-key"],
)  # fmt: skip
def test_refused_input_fails_before_anything_is_written(tmp_path, clean_ansible_env, overrides, message):
    binary = fake_binary(tmp_path, REAL_CLOUDFLARED)
    result = configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary, **overrides))
    output = flat(result)
    assert result.returncode != 0
    assert message in output, output[-3000:]
    assert "localhost" in output
    assert not (tmp_path / "etc").exists()
    assert "c2VjcmV0" not in output


def test_a_cert_pem_on_the_node_is_refused_and_kept(tmp_path, clean_ansible_env):
    binary = fake_binary(tmp_path, REAL_CLOUDFLARED)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "cert.pem").write_text("not really a certificate\n", encoding="utf-8")
    result = configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary))
    output = flat(result)
    assert result.returncode != 0
    assert f"localhost: found {tmp_path}/etc/cert.pem: a cert.pem is the account-wide origin certificate" in output
    assert sorted(path.name for path in (tmp_path / "etc").iterdir()) == ["cert.pem"]


def test_a_file_refused_by_cloudflared_leaves_the_serving_one(tmp_path, clean_ansible_env):
    binary = fake_binary(tmp_path, REAL_CLOUDFLARED)
    assert configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary)).returncode == 0
    config = tmp_path / "etc" / "config.yaml"
    before = (config.read_bytes(), config.stat().st_mtime_ns)
    refused = extra_vars(
        tmp_path,
        binary,
        cloudflared_node_ingress=[{"hostname": "refuse-me.oceanid.example", "service": "http://localhost:8000"}],
    )
    result = configure(tmp_path, clean_ansible_env, refused)
    assert result.returncode != 0
    assert "Validation failed: refused by the fake cloudflared" in flat(result)
    assert (config.read_bytes(), config.stat().st_mtime_ns) == before
    assert "RUNNING HANDLER" not in result.stdout


def test_the_placeholder_is_not_taken_for_cloudflared(tmp_path, clean_ansible_env):
    binary = fake_binary(tmp_path, PLACEHOLDER)
    result = configure(tmp_path, clean_ansible_env, extra_vars(tmp_path, binary))
    assert result.returncode == 0, flat(result)[-3000:]
    assert "is not a real cloudflared (cloudflared version 2025.11.1 (oceanid placeholder: NOT cloudflared))" in flat(
        result
    )
    assert not (tmp_path / "bin" / "validated.log").exists()  # never asked to validate
    assert (tmp_path / "etc" / "config.yaml").exists()


# --- k8s mode: the cluster tunnel, rendered by the role and validated offline --------------------------------------
# No Kubernetes API server is reachable here, so the manifests are validated strictly against the Kubernetes schema of
# the cluster's version with kubernetes-validate (as tests/unit/roles/test_seaweedfs_k8s.py does) and read back;
# applying them (kubernetes.core.k8s) was never run.
K8S_VERSION = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))[
    "cloudflared_node_k8s_version"
]
LABEL_RULE = {"hostname": "label.oceanid.example", "service": "http://label-studio.apps.svc.cluster.local:8080"}


def render_k8s(tmp_path: Path, env: dict, **overrides) -> tuple[dict[str, dict], str]:
    extra = {
        "ansible_python_interpreter": sys.executable,
        "cloudflared_node_mode": "k8s",
        "cloudflared_node_k8s_host": "localhost",
        "cloudflared_node_k8s_manifest_dir": str(tmp_path / "manifests"),
        "cloudflared_node_tunnel_token": TUNNEL_TOKEN,
        "cloudflared_node_ingress": [LABEL_RULE],
        **overrides,
    }
    result = run_role(tmp_path, env, extra, "-vvv")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    manifests = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in (tmp_path / "manifests").iterdir()}
    return manifests, output


@pytest.fixture(name="rendered_k8s", scope="module")
def fixture_rendered_k8s(tmp_path_factory):
    from tests.support.ansible_env import isolated_ansible_env

    tmp_path = tmp_path_factory.mktemp("k8s")
    return render_k8s(tmp_path, isolated_ansible_env(tmp_path))


def pod_spec(manifests: dict) -> dict:
    return manifests["deployment.yaml"]["spec"]["template"]["spec"]


def test_every_manifest_is_valid_for_the_clusters_kubernetes_version(rendered_k8s):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    manifests = rendered_k8s[0]
    assert sorted(manifests) == ["configmap.yaml", "deployment.yaml", "namespace.yaml", "secret.yaml"]
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, f"{K8S_VERSION}.0", strict=True)
    broken = json.loads(json.dumps(manifests["deployment.yaml"]))
    broken["spec"]["template"]["spec"]["dnsPolicyy"] = "ClusterFirstWithHostNet"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, f"{K8S_VERSION}.0", strict=True)


def test_host_network_with_cluster_dns_and_one_pod_per_node(rendered_k8s):
    spec = pod_spec(rendered_k8s[0])
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    term = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert rendered_k8s[0]["deployment.yaml"]["spec"]["replicas"] == 2


def test_the_connector_runs_the_config_from_the_configmap_with_the_secrets_credentials(rendered_k8s):
    manifests = rendered_k8s[0]
    container = pod_spec(manifests)["containers"][0]
    assert (
        container["image"]
        == "docker.io/cloudflare/cloudflared:"
        + yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["cloudflared_node_version"]
    )
    assert [container["command"][0], *container["args"]] == [
        "cloudflared", "--no-autoupdate", "--config", "/etc/cloudflared/config/config.yaml",
        "--metrics", "0.0.0.0:2000", "tunnel", "run",
    ]  # fmt: skip
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    config = yaml.safe_load(manifests["configmap.yaml"]["data"]["config.yaml"])
    assert config == {
        "tunnel": TUNNEL_ID,
        "credentials-file": "/etc/cloudflared/credentials/credentials.json",
        "protocol": "auto",
        "loglevel": "info",
        "ingress": [LABEL_RULE, {"service": "http_status:404"}],
    }
    secret = manifests["secret.yaml"]
    assert json.loads(base64.b64decode(secret["data"]["credentials.json"])) == CREDENTIALS
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"config": "/etc/cloudflared/config", "credentials": "/etc/cloudflared/credentials"}


def test_the_secret_is_only_in_the_secret_and_never_printed(rendered_k8s):
    manifests, output = rendered_k8s
    encoded = base64.b64encode(json.dumps(CREDENTIALS, sort_keys=True).encode()).decode()
    for name, manifest in manifests.items():
        if name != "secret.yaml":
            assert SECRET not in json.dumps(manifest) and encoded not in json.dumps(manifest)
    assert SECRET not in output and TUNNEL_TOKEN not in output and encoded not in output


def test_a_changed_rule_rolls_the_pods(tmp_path, clean_ansible_env, rendered_k8s):
    other = render_k8s(tmp_path, clean_ansible_env, cloudflared_node_ingress=[{**LABEL_RULE, "path": "^/api/"}])[0]
    annotations = other["deployment.yaml"]["spec"]["template"]["metadata"]["annotations"]
    before = rendered_k8s[0]["deployment.yaml"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["oceanid.fleet/config-sha256"] != before["oceanid.fleet/config-sha256"]
    assert annotations["oceanid.fleet/credentials-sha256"] == before["oceanid.fleet/credentials-sha256"]


def test_without_host_network_the_pods_use_cluster_first(tmp_path, clean_ansible_env):
    spec = pod_spec(render_k8s(tmp_path, clean_ansible_env, cloudflared_node_k8s_host_network=False)[0])
    assert spec["hostNetwork"] is False and spec["dnsPolicy"] == "ClusterFirst"
