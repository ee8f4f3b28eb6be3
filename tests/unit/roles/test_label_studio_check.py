# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/label_studio/files/label_studio_check.py: the one check run of an unchanged Label Studio (health, the
front page's redirect, the admin user read without Django). The database part runs against the lab's PostgreSQL in
molecule/label_studio; here: what needs no database."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from pathlib import Path

import pytest

from tests.support.http_routes import serve_routes

HELPER = Path(__file__).resolve().parents[3] / "roles" / "label_studio" / "files" / "label_studio_check.py"
_SPEC = importlib.util.spec_from_file_location("label_studio_check", HELPER)
check = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(check)


@pytest.fixture(name="server")
def fixture_server():
    with serve_routes() as server:
        yield server


def django_pbkdf2(password, salt, iterations):
    """The encoded form Django's PBKDF2PasswordHasher stores: algorithm$iterations$salt$base64(digest)."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return "pbkdf2_sha256$%d$%s$%s" % (iterations, salt, base64.b64encode(digest).decode())


def test_password_matches_djangos_pbkdf2_format_only():
    encoded = django_pbkdf2("lab-admin-change-me", "seasalt", 1000)
    assert check.password_matches(encoded, "lab-admin-change-me") is True
    assert check.password_matches(encoded, "another") is False
    # Another hasher, or no password at all: not decided here (Django decides).
    assert check.password_matches("argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA", "x") is None
    assert check.password_matches("", "x") is None
    assert check.password_matches(None, "x") is None


def test_front_page_must_redirect_to_the_login_page(server):
    server.routes["/"] = (302, "", {"Location": "/user/login/"})
    assert check.check_front_page(server.port) is None
    server.routes["/"] = (200, "<html>")
    assert "answered 200" in check.check_front_page(server.port)


def test_health_waits_for_up(server):
    server.routes["/health"] = (200, '{"status": "UP"}')
    assert check.wait_healthy(server.port, 4) is None
    server.routes["/health"] = (503, "starting")
    reason = check.wait_healthy(server.port, 0)
    assert "did not answer /health UP" in reason and "HTTP 503" in reason


def test_env_file_values_are_unquoted(tmp_path):
    env = tmp_path / "label-studio.env"
    env.write_text('# managed\nDJANGO_DB="default"\nPOSTGRE_PASSWORD="a\\"b\\\\c"\n\nBARE=1\n')
    assert check.read_env_file(env) == {"DJANGO_DB": "default", "POSTGRE_PASSWORD": 'a"b\\c', "BARE": "1"}
