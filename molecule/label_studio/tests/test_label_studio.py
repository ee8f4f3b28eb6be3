# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Behaviour of the converged labelling stack (molecule/label_studio), checked with pytest-testinfra.

Label Studio is asked over HTTP from the controller (the lab host's address), the database from the host
itself. The tests run in file order: the PDF task imported by one is looked for by the next ones.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

testinfra_hosts = ["ls-tethys"]

SCENARIO = Path(__file__).resolve().parents[1]
# The repository root, for the PDF writer the Triton and adapter tests share (tests/support/pdf.py).
sys.path.insert(0, str(SCENARIO.parents[1]))
from tests.support.pdf import make_pdf  # noqa: E402

LABELS_FILE = SCENARIO.parents[1] / "roles" / "label_studio" / "files" / "labels.example.json"
PROJECT = "NER_Data"
SINK_LOG = "/var/lib/oceanid-webhook-sink.jsonl"
# Text only this run puts into the PDF: a prediction that contains it came from Triton reading this PDF.
MARKER = f"Vessel Oceanid Tethys {uuid.uuid4().hex[:12]}"
STATE: dict = {}


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(name="lab_vars", scope="module")
def fixture_lab_vars(host):
    return host.backend.get_variables()


@pytest.fixture(name="api", scope="module")
def fixture_api(lab_vars):
    base = f"http://{lab_vars['ansible_host']}:8080"
    token = lab_vars["ls_admin_token"]
    opener = urllib.request.build_opener(NoRedirect)

    def call(method: str, path: str, body=None, auth: bool = True, expect=(200, 201)):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Token {token}")
        try:
            with opener.open(request, timeout=60) as response:
                status, headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, raw = error.code, error.headers, error.read()
        assert status in expect, f"{method} {path}: {status} {raw[:500]!r}"
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        return status, headers, payload

    return call


def wait_healthy(api, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = api("GET", "/health", auth=False, expect=(200,))[2]
            if body == {"status": "UP"}:
                return
        except (AssertionError, OSError):
            pass
        assert time.monotonic() < deadline, "Label Studio did not answer /health UP in time"
        time.sleep(2)


def project_id(api) -> int:
    page = api("GET", "/api/projects/?page_size=100")[2]
    matches = [project for project in page["results"] if project["title"] == PROJECT]
    assert len(matches) == 1, [project["title"] for project in page["results"]]
    return matches[0]["id"]


def psql(host, sql: str, user: str | None = None, password: str | None = None):
    if user is None:
        return host.run("runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d labelfish -Atc %s", sql)
    return host.run(
        "env PGPASSWORD=%s psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -U %s -d labelfish -Atc %s", password, user, sql
    )


def service_pid(host) -> str:
    return host.run("systemctl show --property=MainPID --value label-studio.service").stdout.strip()


# --- The service ----------------------------------------------------------------------------------------------
def test_front_page_redirects_to_the_login_page(api):
    status, headers = api("GET", "/", auth=False, expect=(302,))[:2]
    assert status == 302 and headers["Location"] == "/user/login/"


def test_served_by_uwsgi_as_the_service_user(host):
    service = host.service("label-studio")
    assert service.is_running and service.is_enabled
    workers = host.process.filter(user="labelstudio", comm="uwsgi")
    assert len(workers) >= 2, "a uWSGI master and its workers"
    env_file = host.file("/opt/label-studio/label-studio.env")
    assert env_file.mode == 0o600 and env_file.user == "labelstudio"


# --- The database -----------------------------------------------------------------------------------------------
def test_label_studio_tables_are_in_schema_labelfish(host):
    result = psql(host, "SELECT tablename FROM pg_tables WHERE schemaname = 'labelfish' ORDER BY 1")
    assert result.rc == 0, result.stderr
    tables = set(result.stdout.split())
    assert {"project", "task", "prediction", "ml_mlbackend", "webhook", "django_migrations", "htx_user"} <= tables
    assert psql(host, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").stdout.strip() == "0"


def test_ro_role_reads_but_cannot_write(host, lab_vars):
    password = lab_vars["labelfish_db_ro_password"]
    read = psql(host, "SELECT count(*) FROM labelfish.project", "labelfish_ro", password)
    assert read.rc == 0, read.stderr
    write = psql(
        host,
        "BEGIN; INSERT INTO labelfish.django_migrations (app, name, applied) VALUES ('oceanid', 'ro', now()); ROLLBACK",
        "labelfish_ro",
        password,
    )
    assert write.rc != 0 and "permission denied" in write.stderr


def test_rw_role_can_write(host, lab_vars):
    write = psql(
        host,
        "BEGIN; INSERT INTO labelfish.django_migrations (app, name, applied) VALUES ('oceanid', 'rw', now()); ROLLBACK",
        "labelfish_rw",
        lab_vars["labelfish_db_rw_password"],
    )
    assert write.rc == 0, write.stderr


# --- Provisioning ------------------------------------------------------------------------------------------------
def test_project_exists_once_with_the_generated_interface(api):
    pid = project_id(api)
    project = api("GET", f"/api/projects/{pid}/")[2]
    config = project["label_config"]
    assert 'name="extracted_text"' in config and "<TextArea" in config
    assert "<Labels" in config and 'name="label"' in config
    for label in json.loads(LABELS_FILE.read_text(encoding="utf-8")):
        assert f'value="{label["value"]}"' in config


def test_ml_backend_is_connected_and_healthy(api):
    backends = api("GET", f"/api/ml/?project={project_id(api)}")[2]
    assert [(backend["url"], backend["state"]) for backend in backends] == [("http://127.0.0.1:9090", "CO")], backends


def test_pdf_task_gets_a_prediction_with_the_text_triton_extracted(api):
    pid = project_id(api)
    pdf = "data:application/pdf;base64," + base64.b64encode(make_pdf([MARKER])).decode()
    imported = api("POST", f"/api/projects/{pid}/import", [{"pdf": pdf, "text": ""}])[2]
    assert imported["task_count"] == 1, imported
    tasks = api("GET", f"/api/tasks/?project={pid}&page_size=100")[2]
    task = max(tasks["tasks"], key=lambda item: item["id"])
    STATE["task"] = task["id"]
    api(
        "POST",
        f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
        {"selectedItems": {"all": False, "included": [task["id"]]}},
    )
    deadline = time.monotonic() + 120
    while True:
        predictions = api("GET", f"/api/predictions/?task={task['id']}")[2]
        texts = [
            text
            for prediction in predictions
            for region in prediction["result"]
            if region.get("from_name") == "extracted_text"
            for text in region["value"]["text"]
        ]
        if texts:
            break
        assert time.monotonic() < deadline, predictions
        time.sleep(2)
    assert any(MARKER in text for text in texts), texts


def test_tasks_created_webhook_reached_the_sink(host):
    deadline = time.monotonic() + 30
    while True:
        records = [json.loads(line) for line in host.file(SINK_LOG).content_string.splitlines() if line.strip()]
        created = [
            record
            for record in records
            if record["path"] == "/ingest"
            and record["body"].get("action") == "TASKS_CREATED"
            and STATE["task"] in [task["id"] for task in record["body"].get("tasks", [])]
        ]
        if created:
            break
        assert time.monotonic() < deadline, records[-3:]
        time.sleep(1)
    assert MARKER not in json.dumps(created[0]["body"]["project"])  # the payload is the project, not the PDF text


def test_a_restarted_label_studio_keeps_its_data(host, api):
    before = service_pid(host)
    assert host.run("systemctl restart label-studio.service").rc == 0
    wait_healthy(api)
    assert service_pid(host) != before
    pid = project_id(api)
    task = api("GET", f"/api/tasks/{STATE['task']}/")[2]
    assert task["project"] == pid and task["data"]["pdf"].startswith("data:application/pdf;base64,")


# --- Bad input: each fails naming the input and the host, and Label Studio keeps serving ----------------------------
def converge_with(
    request, tmp_path: Path, extra: dict, tags: str | None = None, options: tuple = (), succeed: bool = False
) -> str:
    inventory = request.config.getoption("ansible_inventory")
    argv = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "--inventory",
        inventory,
        str(SCENARIO / "bad_input.yml"),
        "--extra-vars",
        "@" + str(tmp_path / "extra.json"),
    ]
    if tags:
        argv += ["--tags", tags]
    argv += list(options)
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600, env=os.environ.copy())
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == succeed, output[-3000:]
    return " ".join(output.split())


@pytest.fixture(name="serving")
def fixture_serving(host, api):
    """Label Studio's PID before the bad run; after it, the same process still answers /health UP."""
    before = service_pid(host)
    yield
    wait_healthy(api, timeout=10)
    assert service_pid(host) == before, "Label Studio was restarted by a failed run"
    api("GET", "/", auth=False, expect=(302,))


def project_with(**changes) -> dict:
    project = {
        "title": PROJECT,
        "labels_file": str(LABELS_FILE),
        "ml_backends": [{"url": "http://127.0.0.1:9090", "title": "ls-triton-adapter"}],
    }
    project.update(changes)
    return project


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('["VESSEL_NAME", "IMO",', "ls-tethys: labels_file {file} is not valid JSON"),
        (
            '{"VESSEL_NAME": 1}',
            f"ls-tethys: the labels of project '{PROJECT}' (labels_file {{file}}) must be a non-empty JSON list",
        ),
    ],
    ids=["malformed", "not-a-list"],
)
def test_a_bad_labels_file_fails_naming_file_and_host(request, tmp_path, serving, content, message):
    bad = tmp_path / "labels.json"
    bad.write_text(content, encoding="utf-8")
    output = converge_with(
        request, tmp_path, {"label_studio_projects": [project_with(labels_file=str(bad))]}, "label_studio_preflight"
    )
    assert message.format(file=bad) in output


def test_a_refused_database_password_fails_before_anything_is_written(request, tmp_path, host, serving):
    env_before = host.file("/opt/label-studio/label-studio.env").md5sum
    wrong = "wrong-Pw-5550123"
    output = converge_with(
        request,
        tmp_path,
        {"label_studio_database_url": f"postgresql://labelfish_owner:{wrong}@127.0.0.1:5432/labelfish"},
    )
    assert "ls-tethys: label_studio_database_url does not work" in output
    assert "PostgreSQL server 127.0.0.1:5432, database 'labelfish', user 'labelfish_owner' refused" in output
    assert "password authentication failed" in output
    assert wrong not in output
    assert host.file("/opt/label-studio/label-studio.env").md5sum == env_before


def test_an_unreachable_ml_backend_fails_naming_url_and_host(request, tmp_path, api, serving):
    output = converge_with(
        request,
        tmp_path,
        {"label_studio_projects": [project_with(ml_backends=[{"url": "http://127.0.0.1:9", "title": "nowhere"}])]},
        "label_studio_preflight,label_studio_provision",
    )
    assert "ls-tethys: provisioning Label Studio at http://127.0.0.1:8080 failed" in output
    assert "http://127.0.0.1:9" in output
    backends = api("GET", f"/api/ml/?project={project_id(api)}")[2]
    assert [backend["url"] for backend in backends] == ["http://127.0.0.1:9090"]


def test_a_wrong_api_token_fails_naming_host_and_not_the_token(request, tmp_path, serving):
    wrong = "f" * 40
    output = converge_with(
        request,
        tmp_path,
        {"label_studio_projects": [project_with()], "label_studio_api_token": wrong},
        "label_studio_preflight,label_studio_provision",
    )
    assert "ls-tethys: provisioning Label Studio at http://127.0.0.1:8080 failed" in output
    assert "401" in output or "token" in output.lower()
    assert wrong not in output


def test_no_secret_appears_at_vvv(request, tmp_path, lab_vars, serving):
    """A -vvv check-mode run of the role (projects included) prints no password, token or key."""
    output = converge_with(
        request,
        tmp_path,
        {"label_studio_projects": [project_with()]},
        options=("--check", "-vvv"),
        succeed=True,
    )
    assert "ls-tethys" in output and "label_studio_project" in output
    secrets = {
        "database password": lab_vars["ls_db_owner_password"],
        "admin password": lab_vars["label_studio_admin_password"],
        "admin token": lab_vars["ls_admin_token"],
        "secret key": lab_vars["label_studio_secret_key"],
    }
    assert [name for name, secret in secrets.items() if secret in output] == []
