# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Create Label Studio's first admin user once, non-interactively, and keep its token and settings.

Run as the service's user with the Label Studio virtualenv's Python:
    python label_studio_admin.py ENV_FILE APP_DIR [--check] < settings.json
ENV_FILE is the service's environment file (KEY="value" lines, as the role writes them); APP_DIR is the
installed label_studio package. stdin carries JSON: email, password, token, update_password,
legacy_api_tokens_enabled. Prints one JSON line: {"changed": bool, "actions": [...]} (never a secret).
An existing user's password is changed only when update_password is true and it differs.
"""

import json
import os
import sys


def read_env_file(path):
    """Parse the KEY="value" lines the role writes (\\ and \" escaped inside the quotes)."""
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


def ensure_admin(settings, check):
    from django.db import transaction
    from organizations.functions import create_organization
    from organizations.models import Organization
    from rest_framework.authtoken.models import Token
    from users.models import User

    actions = []
    with transaction.atomic():
        user = User.objects.filter(email=settings["email"]).first()
        if user is None:
            actions.append("created user")
            if check:
                return actions
            user = User.objects.create_user(email=settings["email"], password=settings["password"])
            user.is_staff = True
            user.is_superuser = True
            user.save()
        elif settings["update_password"] and not user.check_password(settings["password"]):
            actions.append("changed password")
            if not check:
                user.set_password(settings["password"])
                user.save(update_fields=["password"])

        organization = Organization.objects.first()
        if organization is None:
            actions.append("created organization")
            if not check:
                organization = create_organization(
                    title="Label Studio",
                    created_by=user,
                    legacy_api_tokens_enabled=settings["legacy_api_tokens_enabled"],
                )
        elif not organization.has_user(user):
            actions.append("joined organization")
            if not check:
                organization.add_user(user)
        if organization is not None and user.active_organization_id != organization.id:
            if "created user" not in actions:
                actions.append("set active organization")
            if not check:
                user.active_organization = organization
                user.save(update_fields=["active_organization"])

        if organization is not None:
            jwt = organization.jwt
            wanted = bool(settings["legacy_api_tokens_enabled"])
            if jwt.legacy_api_tokens_enabled != wanted:
                actions.append("legacy API tokens {}".format("enabled" if wanted else "disabled"))
                if not check:
                    jwt.legacy_api_tokens_enabled = wanted
                    jwt.save(update_fields=["legacy_api_tokens_enabled"])

        token = settings.get("token") or ""
        if token:
            current = Token.objects.filter(user=user).first()
            if current is None or current.key != token:
                actions.append("set API token")
                if not check:
                    Token.objects.filter(user=user).delete()
                    Token.objects.create(user=user, key=token)
    return actions


def main(argv):
    env_file, app_dir = argv[1], argv[2]
    check = "--check" in argv[3:]
    settings = json.load(sys.stdin)
    os.environ.update(read_env_file(env_file))
    os.chdir(app_dir)
    sys.path.insert(0, app_dir)
    import django

    django.setup()
    actions = ensure_admin(settings, check)
    sys.stdout.write(json.dumps({"changed": bool(actions), "actions": actions}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
