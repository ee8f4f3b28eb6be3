# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The label_studio role's k8s mode, rendered by the role itself and checked offline.

No Kubernetes API server is reachable here, so every manifest the role renders is validated against the
Kubernetes OpenAPI schema of the cluster's version (strict: unknown fields fail) with kubernetes-validate,
and checked for the settings host mode uses too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ansible_env import isolated_ansible_env

kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROLE = Path(__file__).resolve().parents[3] / "roles" / "label_studio"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
K8S_VERSION = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))["label_studio_k8s_version"]
DB_PASSWORD = "db-pass/with:odd@chars"
VARS = {
    "label_studio_mode": "k8s",
    "label_studio_database_url": "postgresql://labelfish_owner:db-pass%2Fwith%3Aodd%40chars@db.example.org:6432/labelfish?sslmode=require",
    "label_studio_secret_key": "k8s-secret-key-0123456789abcdefghijklmnop",
    "label_studio_admin_email": "admin@example.org",
    "label_studio_admin_password": "admin-password-1",
    "label_studio_admin_token": "0123456789abcdef0123456789abcdef01234567",
    "label_studio_public_url": "https://label.example.org",
}

PLAYBOOK = f"""
- name: Render the label_studio manifests
  hosts: all
  gather_facts: false
  roles:
    - role: {ROLE}
"""


def run_role(tmp_path: Path, env: dict, **overrides) -> subprocess.CompletedProcess:
    inventory = {
        "all": {
            "hosts": {"tethys": {}},
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "label_studio_k8s_manifest_dir": str(tmp_path / "manifests"),
                **VARS,
                **overrides,
            },
        }
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    (tmp_path / "render.yml").write_text(PLAYBOOK, encoding="utf-8")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "render.yml")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(name="rendered", scope="module")
def fixture_rendered(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("label_studio_k8s")
    result = run_role(tmp_path, isolated_ansible_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    manifests = {
        path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in (tmp_path / "manifests").iterdir()
    }
    return manifests, result.stdout + result.stderr


def test_every_manifest_is_valid_for_the_clusters_kubernetes_version(rendered):
    manifests = rendered[0]
    assert set(manifests) == {"namespace.yaml", "secret.yaml", "pvc.yaml", "deployment.yaml", "service.yaml"}
    for name, manifest in manifests.items():
        kubernetes_validate.validate(manifest, f"{K8S_VERSION}.0", strict=True)
        assert manifest["metadata"].get("namespace", manifest["metadata"]["name"]) == "label-studio", name


def test_a_broken_manifest_is_rejected_by_the_same_validation(rendered):
    broken = json.loads(json.dumps(rendered[0]["deployment.yaml"]))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, f"{K8S_VERSION}.0", strict=True)


def test_secret_carries_database_url_secret_key_and_admin(rendered):
    secret = rendered[0]["secret.yaml"]["stringData"]
    assert secret["DATABASE_URL"] == VARS["label_studio_database_url"]
    assert secret["POSTGRE_PASSWORD"] == DB_PASSWORD
    assert secret["SECRET_KEY"] == VARS["label_studio_secret_key"]
    assert secret["LABEL_STUDIO_USERNAME"] == "admin@example.org"
    assert secret["LABEL_STUDIO_USER_TOKEN"] == VARS["label_studio_admin_token"]


def test_deployment_runs_label_studios_uwsgi_with_the_host_modes_environment(rendered):
    manifests = rendered[0]
    deployment = manifests["deployment.yaml"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["image"] == "docker.io/heartexlabs/label-studio:1.23.2"
    assert container["args"] == ["label-studio-uwsgi"]
    assert container["envFrom"] == [{"secretRef": {"name": "label-studio"}}]
    assert env["DJANGO_DB"] == "default"
    assert (env["POSTGRE_HOST"], env["POSTGRE_PORT"], env["POSTGRE_NAME"], env["POSTGRE_USER"]) == (
        "db.example.org",
        "6432",
        "labelfish",
        "labelfish_owner",
    )
    assert env["PGSSLMODE"] == "require"
    assert env["LABEL_STUDIO_HOST"] == "https://label.example.org"
    assert env["PDF_CONVERT_TO_IMAGES"] == "true"
    assert env["ML_BLOCK_LOCAL_IP"] == "false" and env["SSRF_PROTECTION_ENABLED"] == "false"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_BASE_DATA_DIR"] == "/label-studio/data"
    assert not {"POSTGRE_PASSWORD", "SECRET_KEY"} & set(env), "secrets belong in the Secret"
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/label-studio/data"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = deployment["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == manifests["pvc.yaml"]["metadata"]["name"]
    assert manifests["service.yaml"]["spec"]["ports"][0]["port"] == 8080


def test_no_secret_in_the_output(rendered):
    output = rendered[1]
    for secret in (DB_PASSWORD, VARS["label_studio_secret_key"], VARS["label_studio_admin_password"]):
        assert secret not in output


def test_k8s_mode_without_a_secret_key_fails_naming_host_and_variable(tmp_path, clean_ansible_env):
    result = run_role(tmp_path, clean_ansible_env, label_studio_secret_key="")
    assert result.returncode != 0
    assert "tethys: label_studio_secret_key (at least 32 characters) is required" in result.stdout
    assert not (tmp_path / "manifests").exists()


def test_projects_are_not_provisioned_without_a_cluster(tmp_path, clean_ansible_env):
    labels = tmp_path / "labels.json"
    labels.write_text('["VESSEL_NAME"]', encoding="utf-8")
    result = run_role(
        tmp_path, clean_ansible_env, label_studio_projects=[{"title": "NER_Data", "labels_file": str(labels)}]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "provision.yml" not in result.stdout  # include_tasks prints "included: .../provision.yml" when it runs
    assert (tmp_path / "manifests" / "deployment.yaml").is_file()
