# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wait until Label Studio is healthy, ask for its front page, and tell whether the admin user is as wanted.

Run as root with the Label Studio virtualenv's Python (it has psycopg); the role passes this file's text with -c,
so a --check run checks with the role's own version even where an earlier version of the role converged the host:
    python label_studio_check.py ENV_FILE < settings.json    (or python -c "$(cat label_studio_check.py)" ENV_FILE)
ENV_FILE is the service's environment file (the database Label Studio uses). stdin carries JSON: port,
health_timeout, connect_timeout, email, password, token, update_password, legacy_api_tokens_enabled.

1. GET http://127.0.0.1:PORT/health until it answers 200 with "UP" (every 2 s, ceil(health_timeout / 2)
   retries, as the role's former ansible.builtin.uri wait did);
2. GET / must answer 302 to .../user/login/;
3. read, in one database session and without starting Django, the facts label_studio_admin.py guarantees:
   the user with this email exists; the first organization (lowest id) exists, has the user as a member
   and is the user's active organization; its JWT settings' legacy_api_tokens_enabled is as wanted; the
   user's API token is the given one (when one is given); the password matches (only with update_password;
   Django's pbkdf2_sha256, the only hasher read here).

Prints one JSON line: {"admin_as_wanted": bool, "admin_differs": "<what, never a secret>"}. When any fact
cannot be read (no connection, another hasher, another schema), admin_as_wanted is false and the role runs
label_studio_admin.py, which decides with Django. Exit 1 with one line on stderr when 1 or 2 fails.
"""

import base64
import hashlib
import hmac
import http.client
import json
import math
import os
import sys
import time


def read_env_file(path):
    """Parse the KEY="value" lines the role writes (as label_studio_admin.py does)."""
    env = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            env[key] = value
    return env


def get(port, path, timeout=30):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def wait_healthy(port, timeout):
    retries = math.ceil(timeout / 2)
    last = "no answer"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(2)
        try:
            status, _location, body = get(port, "/health")
        except OSError as error:
            last = str(error)
            continue
        if status == 200 and '"UP"' in body:
            return None
        last = "HTTP {}: {}".format(status, " ".join(body.split())[:200])
    return f"Label Studio did not answer /health UP on 127.0.0.1:{port} within {timeout} s (last: {last})"


def check_front_page(port):
    try:
        status, location, _body = get(port, "/")
    except OSError as error:
        return f"the front page did not answer: {error}"
    if status != 302 or not location.endswith("/user/login/"):
        return f"the front page answered {status} to {location!r}, not a 302 to the login page"
    return None


def password_matches(encoded, password):
    """Django's PBKDF2PasswordHasher.verify; None for any other hasher (Django decides then)."""
    parts = (encoded or "").split("$", 3)
    if len(parts) != 4 or parts[0] != "pbkdf2_sha256" or not parts[1].isdigit():
        return None
    _algorithm, iterations, salt, digest = parts
    computed = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), int(iterations))
    return hmac.compare_digest(base64.b64encode(computed).decode("ascii").strip(), digest)


def env_value(env, name, default):
    """Label Studio's get_env: LABEL_STUDIO_<name>, HEARTEX_<name>, then <name>."""
    for key in ("LABEL_STUDIO_" + name, "HEARTEX_" + name, name):
        if key in env:
            return env[key]
    return default


def admin_differs(env_file, settings):
    """What differs from what label_studio_admin.py would leave, or None when nothing does."""
    env = read_env_file(env_file)
    if env_value(env, "DJANGO_DB", "default") not in ("default", "postgresql"):
        return "the database is not PostgreSQL"
    os.environ.update(env)  # PGSSLMODE and the like, as the service has them
    import psycopg

    params = {
        "host": env_value(env, "POSTGRE_HOST", "localhost"),
        "port": int(env_value(env, "POSTGRE_PORT", "5432")),
        "dbname": env_value(env, "POSTGRE_NAME", "postgres"),
        "user": env_value(env, "POSTGRE_USER", "postgres"),
        "password": env_value(env, "POSTGRE_PASSWORD", "postgres"),
        "connect_timeout": settings["connect_timeout"],
        "application_name": "oceanid-label-studio-check",
    }
    with psycopg.connect(**params) as connection:
        user = connection.execute(
            "SELECT id, password, active_organization_id FROM htx_user WHERE email = %s", (settings["email"],)
        ).fetchone()
        if user is None:
            return "no user"
        user_id, encoded, active_organization = user
        organization = connection.execute("SELECT id FROM organization ORDER BY id LIMIT 1").fetchone()
        if organization is None:
            return "no organization"
        organization = organization[0]
        member = connection.execute(
            "SELECT 1 FROM organizations_organizationmember WHERE organization_id = %s AND user_id = %s LIMIT 1",
            (organization, user_id),
        ).fetchone()
        if member is None:
            return "not a member of the organization"
        if active_organization != organization:
            return "another active organization"
        jwt = connection.execute(
            "SELECT legacy_api_tokens_enabled FROM jwt_auth_jwtsettings WHERE organization_id = %s", (organization,)
        ).fetchone()
        if jwt is None or jwt[0] != bool(settings["legacy_api_tokens_enabled"]):
            return "legacy API tokens setting"
        if settings.get("token"):
            key = connection.execute("SELECT key FROM authtoken_token WHERE user_id = %s", (user_id,)).fetchone()
            if key is None or not hmac.compare_digest(key[0], settings["token"]):
                return "API token"
    if settings["update_password"] and not password_matches(encoded, settings["password"]):
        return "password (or a hasher read only by Django)"
    return None


def main(argv):
    settings = json.load(sys.stdin)
    for problem in (wait_healthy(settings["port"], settings["health_timeout"]), check_front_page(settings["port"])):
        if problem:
            sys.stderr.write(problem + "\n")
            return 1
    try:
        differs = admin_differs(argv[1], settings)
    except Exception as error:  # any failure to read leaves the decision to Django
        differs = f"not read ({type(error).__name__})"
    sys.stdout.write(json.dumps({"admin_as_wanted": differs is None, "admin_differs": differs or ""}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
