# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The labelfish_db role against a real PostgreSQL 15 (external-server mode), checked from the database side.

The runs share one cluster and build on each other, in file order: a check on the fresh server, the first
converge, a second converge (changed=0), a check on the converged server (drift_guard), then what the database
does for the three roles (Label Studio's own migrations included), then bad input.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.integration.labelfish_db import pg_cluster
from tests.integration.labelfish_db.conftest import ADMIN_PASSWORD, PASSWORDS
from tests.support import label_studio

OWNER = ("labelfish_owner", PASSWORDS["labelfish_db_owner_password"])
RW = ("labelfish_rw", PASSWORDS["labelfish_db_rw_password"])
RO = ("labelfish_ro", PASSWORDS["labelfish_db_ro_password"])
DRIFT_GUARD = {"ANSIBLE_CALLBACKS_ENABLED": "oceanid.fleet.drift_guard"}


def _sql(cluster, role, sql: str) -> str:
    result = cluster.psql(sql, *role)
    assert result.returncode == 0, f"{role[0]}: {sql}: {result.stderr}"
    return result.stdout.strip()


def _admin(cluster, sql: str, database: str = "labelfish") -> str:
    result = cluster.psql(sql, "postgres", ADMIN_PASSWORD, database)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _catalog(cluster) -> str:
    """What the role manages, as the catalogs say (shared ones and the database's): any change to it changes this."""
    return _admin(
        cluster,
        "SELECT string_agg(x, ' | ' ORDER BY x) FROM ("
        " SELECT a.rolname || coalesce(r.rolconfig::text, '') || coalesce(a.rolpassword, '') AS x"
        "  FROM pg_authid a JOIN pg_roles r USING (oid) WHERE a.rolname LIKE 'labelfish%'"
        " UNION ALL SELECT datname || coalesce(datacl::text, '') FROM pg_database WHERE datname = 'labelfish'"
        " UNION ALL SELECT setconfig::text FROM pg_db_role_setting"
        " UNION ALL SELECT extname FROM pg_extension"
        " UNION ALL SELECT nspname || coalesce(nspacl::text, '') FROM pg_namespace"
        " UNION ALL SELECT defaclacl::text FROM pg_default_acl) s",
    )


@pytest.fixture(scope="module")
def converged(play, cluster):
    """Check on the fresh server, then the first and the second converge; their results, in that order."""
    fresh_check = play.run("--check")
    exists_after_check = _admin(cluster, "SELECT count(*) FROM pg_database WHERE datname = 'labelfish'", "postgres")
    first = play.run()
    assert first.rc == 0, first.output[-4000:]
    second = play.run()
    return {"fresh_check": fresh_check, "exists_after_check": exists_after_check, "first": first, "second": second}


def test_check_on_a_fresh_server_reports_and_changes_nothing(converged):
    run = converged["fresh_check"]
    assert run.rc == 0, run.output[-4000:]
    assert run.recap()["failed"] == 0
    assert run.recap()["changed"] > 0  # the roles and the database it would create
    assert converged["exists_after_check"] == "0"


def test_second_converge_changes_nothing(converged):
    assert converged["first"].recap()["changed"] > 0
    second = converged["second"]
    assert second.rc == 0, second.output[-4000:]
    assert second.recap()["changed"] == 0, second.output[-4000:]


def test_check_on_the_converged_server_is_clean(converged, play):
    run = play.run("--check", env=DRIFT_GUARD)
    assert run.rc == 0, run.output[-4000:]
    assert run.recap()["changed"] == 0


def test_schema_extensions_and_owner(converged, cluster):
    assert _admin(cluster, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'labelfish'") == OWNER[0]
    assert _admin(cluster, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'labelfish'") == OWNER[0]
    extensions = set(_admin(cluster, "SELECT extname FROM pg_extension").split())
    assert {"pgcrypto", "citext", "pg_trgm", "btree_gist", "btree_gin"} <= extensions
    assert (
        _admin(cluster, "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'labelfish'") == "UTF8"
    )


@pytest.mark.parametrize("role", [OWNER, RW, RO], ids=lambda role: role[0])
def test_database_defaults_as_each_role(converged, cluster, role):
    assert _sql(cluster, role, "SHOW timezone") == "UTC"
    assert _sql(cluster, role, "SHOW search_path") == "labelfish, public"
    assert _sql(cluster, role, "SHOW idle_in_transaction_session_timeout") == "5min"
    # The owner runs Label Studio's migrations: no statement timeout; the others get the database's.
    assert _sql(cluster, role, "SHOW statement_timeout") == ("0" if role is OWNER else "1min")
    # The extensions' functions are found through the search path.
    assert _sql(cluster, role, "SELECT similarity('labelfish', 'labelfish')") == "1"


def test_grants_reach_tables_the_owner_creates_later(converged, cluster):
    # As Label Studio's migrations would: unqualified names, created as the owner after the role ran.
    _sql(cluster, OWNER, "CREATE TABLE later_task (id serial PRIMARY KEY, data citext, made timestamptz DEFAULT now())")
    assert _admin(cluster, "SELECT schemaname FROM pg_tables WHERE tablename = 'later_task'") == "labelfish"
    _sql(cluster, OWNER, "INSERT INTO later_task (data) VALUES ('from the owner')")

    assert _sql(cluster, RO, "SELECT data FROM labelfish.later_task") == "from the owner"
    denied = cluster.psql("INSERT INTO later_task (data) VALUES ('from ro')", *RO)
    assert denied.returncode != 0 and "permission denied" in denied.stderr

    _sql(cluster, RW, "INSERT INTO later_task (data) VALUES ('from rw')")  # the serial's sequence too
    _sql(cluster, RW, "UPDATE later_task SET data = 'rw was here' WHERE data = 'from rw'")
    _sql(cluster, RW, "DELETE FROM later_task WHERE data = 'rw was here'")
    assert _sql(cluster, RO, "SELECT count(*) FROM later_task") == "1"

    for role in (RW, RO):
        refused = cluster.psql("CREATE TABLE labelfish.not_mine (id int)", *role)
        assert refused.returncode != 0 and "permission denied" in refused.stderr
        refused = cluster.psql("CREATE TABLE public.not_mine (id int)", *role)
        assert refused.returncode != 0 and "permission denied" in refused.stderr


def test_a_converge_after_label_studio_made_tables_changes_nothing(converged, cluster, play):
    _sql(cluster, OWNER, "CREATE TABLE IF NOT EXISTS later_project (id bigserial PRIMARY KEY, title text)")
    run = play.run()
    assert run.rc == 0, run.output[-4000:]
    assert run.recap()["changed"] == 0, run.output[-4000:]


def test_the_application_url_works_and_encodes_the_password(converged, cluster, play):
    url = play.url_file.read_text(encoding="utf-8")
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == (
        "postgresql",
        "127.0.0.1",
        cluster.port,
        "/labelfish",
    )
    assert unquote(parts.username) == OWNER[0]
    assert unquote(parts.password) == OWNER[1]  # @ : / % ? # in it
    result = pg_cluster.psql_url(url, "SELECT current_user || ' ' || current_schema()")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "labelfish_owner labelfish"


def test_label_studio_migrations_run_as_the_owner_into_the_schema(converged, cluster, play):
    """Label Studio 1.23.2's own migrations, with the connection the role hands out, then the grants on its tables."""
    label_studio.ensure_venv()  # builds .cache/label-studio/venv on a fresh clone
    venv = label_studio.VENV
    url = urlsplit(play.url_file.read_text(encoding="utf-8"))
    package = next((venv / "lib").glob("python3*/site-packages/label_studio"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "core.settings.label_studio",
        "DJANGO_DB": "default",  # Label Studio reads POSTGRE_*, not DATABASE_URL
        "POSTGRE_HOST": url.hostname,
        "POSTGRE_PORT": str(url.port),
        "POSTGRE_NAME": url.path.lstrip("/"),
        "POSTGRE_USER": unquote(url.username),
        "POSTGRE_PASSWORD": unquote(url.password),
        "LABEL_STUDIO_BASE_DATA_DIR": str(play.directory / "label-studio-data"),
    }
    migrate = subprocess.run(
        [str(venv / "bin" / "python"), "manage.py", "migrate", "--no-input"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]

    owners = _admin(
        cluster,
        "SELECT schemaname || ' ' || tableowner || ' ' || count(*) FROM pg_tables"
        " WHERE tablename IN ('project', 'task', 'django_migrations') GROUP BY schemaname, tableowner",
    )
    assert owners == f"labelfish {OWNER[0]} 3"
    assert int(_sql(cluster, RO, "SELECT count(*) FROM django_migrations")) > 100
    denied = cluster.psql("DELETE FROM task", *RO)
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    _sql(cluster, RW, "INSERT INTO django_migrations (app, name, applied) VALUES ('oceanid', 'probe', now())")
    _sql(cluster, RW, "DELETE FROM django_migrations WHERE app = 'oceanid'")

    run = play.run()
    assert run.rc == 0, run.output[-4000:]
    assert run.recap()["changed"] == 0, run.output[-4000:]


def test_other_roles_cannot_connect(converged, cluster):
    _admin(cluster, "CREATE ROLE stranger LOGIN PASSWORD 'stranger-pw'", "postgres")
    refused = cluster.psql("SELECT 1", "stranger", "stranger-pw")
    assert refused.returncode != 0 and "permission denied for database" in refused.stderr


def test_a_refused_admin_password_names_the_server_and_changes_nothing(converged, cluster, play):
    before = _catalog(cluster)
    wrong = "Wr0ng:pw@x/y"
    run = play.run(labelfish_db_admin_url=play.admin_url(wrong), labelfish_db_ro_password="a-new-ro-password")
    assert run.rc != 0
    assert run.recap()["changed"] == 0 and run.recap()["failed"] == 1
    message = " ".join(run.output.split())
    assert (
        f"db: PostgreSQL at 127.0.0.1:{cluster.port} (database postgres) refused the password of user postgres"
        in message
    )
    assert "labelfish_db_admin_url" in message and "Nothing was changed" in message
    assert wrong not in run.output and quote(wrong, safe="") not in run.output
    assert _catalog(cluster) == before


def test_split_admin_variables_work_too(converged, cluster, play):
    run = play.run(
        labelfish_db_admin_url="",
        labelfish_db_admin_host="127.0.0.1",
        labelfish_db_admin_port=cluster.port,
        labelfish_db_admin_password=ADMIN_PASSWORD,
        labelfish_db_ssl_mode="disable",
    )
    assert run.rc == 0, run.output[-4000:]
    assert run.recap()["changed"] == 0


def test_a_missing_role_password_is_named(converged, play):
    run = play.run(labelfish_db_rw_password="")
    assert run.rc != 0
    assert "db: labelfish_db_rw_password is empty" in " ".join(run.output.split())


def test_no_password_in_verbose_output(converged, play):
    run = play.run("-vvv")
    assert run.rc == 0, run.output[-4000:]
    secrets = [ADMIN_PASSWORD, *PASSWORDS.values()]
    for secret in secrets + [quote(secret, safe="") for secret in secrets]:
        assert secret not in run.output, f"a password appears in the -vvv output: {secret[:3]}..."
