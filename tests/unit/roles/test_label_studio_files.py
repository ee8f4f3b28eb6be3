# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The label_studio role's host files rendered by Ansible from its own templates and variables.

The environment file (what Label Studio 1.23.2 reads: POSTGRE_* from the database URL, the secrets), read back
the way systemd and the role's admin script read it; the unit checked with systemd-analyze; uwsgi.ini parsed.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles" / "label_studio"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
PASSWORD = 'p@ss "w$rd\\ with: odd/chars'
DB_URL = "postgresql://labelfish_owner:p%40ss%20%22w%24rd%5C%20with%3A%20odd%2Fchars@10.77.0.11:5432/labelfish"


def render(tmp_path: Path, env: dict, **overrides) -> dict[str, str]:
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: true
  vars_files: ["{ROLE}/defaults/main.yml", "{ROLE}/vars/main.yml"]
  tasks:
    - ansible.builtin.set_fact:
        __label_studio_env_secret: {{POSTGRE_PASSWORD: "{{{{ _label_studio_db.password }}}}", SECRET_KEY: "{{{{ label_studio_secret_key }}}}"}}
    - ansible.builtin.template:
        src: "{ROLE}/templates/{{{{ item }}}}.j2"
        dest: "{tmp_path}/{{{{ item }}}}"
        mode: "0600"
      loop: [label-studio.env, uwsgi.ini, label-studio.service]
""",
        encoding="utf-8",
    )
    extra = {
        "label_studio_database_url": DB_URL,
        "label_studio_secret_key": "secret-$with\"quotes'-0123456789abcdef",
        "label_studio_public_url": "http://tethys:8080",
        **overrides,
    }
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"]
        + [str(playbook), "--extra-vars", json.dumps(extra)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {
        name: (tmp_path / name).read_text(encoding="utf-8")
        for name in ("label-studio.env", "uwsgi.ini", "label-studio.service")
    }


def admin_script():
    spec = importlib.util.spec_from_file_location("label_studio_admin", ROLE / "files" / "label_studio_admin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(name="files")
def fixture_files(tmp_path, clean_ansible_env):
    return tmp_path, render(tmp_path, clean_ansible_env)


def test_env_file_has_label_studios_database_settings_and_secrets(files):
    tmp_path = files[0]
    env = admin_script().read_env_file(tmp_path / "label-studio.env")
    assert env["DJANGO_DB"] == "default"
    assert env["DJANGO_SETTINGS_MODULE"] == "core.settings.label_studio"
    assert (env["POSTGRE_HOST"], env["POSTGRE_PORT"], env["POSTGRE_NAME"], env["POSTGRE_USER"]) == (
        "10.77.0.11",
        "5432",
        "labelfish",
        "labelfish_owner",
    )
    assert env["POSTGRE_PASSWORD"] == PASSWORD
    assert env["SECRET_KEY"] == "secret-$with\"quotes'-0123456789abcdef"
    assert env["LABEL_STUDIO_HOST"] == "http://tethys:8080"
    assert env["ML_BLOCK_LOCAL_IP"] == "false" and env["SSRF_PROTECTION_ENABLED"] == "false"
    assert env["LATEST_VERSION_CHECK"] == "false" and env["SENTRY_DSN"] == ""
    assert "PGSSLMODE" not in env


def test_env_file_values_read_back_by_shell_quoting_rules_as_systemd_does(files):
    """systemd's EnvironmentFile= parser treats "..." like the shell: \\ and \" are the only escapes used here."""
    tmp_path, rendered = files
    parsed = admin_script().read_env_file(tmp_path / "label-studio.env")
    for line in rendered["label-studio.env"].splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            assert shlex.split(value, posix=True) in ([parsed[key]], [""] if parsed[key] == "" else [])


def test_uwsgi_ini_has_label_studios_deploy_settings(files):
    rendered = files[1]
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(rendered["uwsgi.ini"])
    uwsgi = parser["uwsgi"]
    assert uwsgi["module"] == "core.wsgi:application"
    assert uwsgi["http"] == "0.0.0.0:8080"
    assert uwsgi["chdir"].endswith("/site-packages/label_studio")
    for key, value in {"master": "true", "lazy-apps": "true", "need-app": "true", "die-on-term": "true"}.items():
        assert uwsgi[key] == value
    assert (uwsgi["harakiri"], uwsgi["max-requests"], uwsgi["post-buffering"]) == ("120", "5000", "4096")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_unit_runs_uwsgi_from_the_venv_and_verifies(files):
    tmp_path, rendered = files
    unit = rendered["label-studio.service"]
    assert "ExecStart=/opt/label-studio/venv/bin/uwsgi --ini /opt/label-studio/uwsgi.ini" in unit
    assert "EnvironmentFile=/opt/label-studio/label-studio.env" in unit
    assert "User=labelstudio" in unit
    copy = tmp_path / "verify" / "label-studio.service"
    copy.parent.mkdir()
    copy.write_text(unit, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True, check=False
    )
    # The venv and user do not exist on this machine; only complaints about the unit's syntax count.
    problems = [
        line
        for line in result.stderr.splitlines()
        if "label-studio.service" in line and ("Unknown" in line or "Invalid" in line or "syntax" in line.lower())
    ]
    assert problems == [], result.stderr
