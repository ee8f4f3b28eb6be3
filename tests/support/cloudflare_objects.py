# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cloudflare emulator handlers: Access service tokens (account and zone scope) and Cloudflare Tunnels (cfd_tunnel).

Contracts: tests/support/cloudflare_specs/cloudflare-access-service-tokens.json and cloudflare-tunnels.json.
A client secret appears only in the create, rotate and version-bumping update responses; a tunnel secret only in
the create response; the tunnel token only from GET .../token.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
import secrets
import string

from tests.support.cloudflare_api import (
    ApiError,
    envelope_ok,
    first,
    go_duration_seconds,
    not_found,
    now,
    paginate,
    parse_time,
    public,
    stamp,
    validation_error,
)

DEFAULT_DURATION = "8760h"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_ALNUM = string.ascii_letters + string.digits


# --- service tokens -------------------------------------------------------------------------------------------
def new_client_secret() -> str:
    """2026 format: 'cfast_' + 40 alphanumerics + an 8-character checksum.
    choice: the checksum algorithm is not published; the emulator uses the first 8 hex digits of sha256(body)."""
    body = "".join(secrets.choice(_ALNUM) for _index in range(40))
    return "cfast_" + body + hashlib.sha256(body.encode()).hexdigest()[:8]


def _expiry(duration: str, start: datetime.datetime) -> str | None:
    if duration == "forever":
        return None  # choice: a non-expiring token has expires_at null
    return stamp(start + datetime.timedelta(seconds=go_duration_seconds(duration)))


def _check_duration(value) -> None:
    if value == "forever":
        return
    try:
        go_duration_seconds(value)
    except ValueError:
        raise validation_error(
            f"duration {value!r} is not valid: use a Go duration with units ns, us, ms, s, m, h (e.g. 8760h) or "
            "'forever'",
            "/duration",
        ) from None


def _check_time(body: dict, name: str) -> datetime.datetime | None:
    if body.get(name) is None:
        return None
    try:
        return parse_time(str(body[name]))
    except ValueError:
        raise validation_error(f"{name} must be an RFC 3339 date-time", f"/{name}") from None


def _tokens(state, request) -> list[dict]:
    scope, scope_id = request.scope
    return [t for t in state.data["service_tokens"].values() if t["_scope"] == [scope, scope_id]]


def _token(state, request) -> dict:
    token = state.data["service_tokens"].get(request.params["service_token_id"])
    if token is None or token["_scope"] != list(request.scope):
        raise not_found("unknown service token", request.path)
    return token


def token_view(token: dict, secret: str | None = None) -> dict:
    view = public(token)
    if secret is not None:
        view["client_secret"] = secret
    return view


def _set_secret(token: dict, previous_expires: datetime.datetime | None) -> str:
    secret = new_client_secret()
    moment = now()
    expires = previous_expires or moment  # omitted = the previous secret expires now
    token["_previous_secret"] = token.get("_secret")
    token["_previous_secret_expires_at"] = stamp(expires)
    token["previous_client_secret_expires_at"] = stamp(expires)
    token["_secret"] = secret
    return secret


def list_tokens(state, request):
    tokens = sorted(_tokens(state, request), key=lambda t: t["created_at"])
    name = first(request.query, "name")
    if name is not None:
        tokens = [t for t in tokens if t["name"] == name]  # choice: exact match (the spec leaves it open)
    search = first(request.query, "search")
    if search:
        needle = search.lower()
        tokens = [t for t in tokens if needle in t["name"].lower() or needle in t["client_id"].lower()]
    # choice: per_page default 20, maximum 1000 (not given by the spec)
    chunk, info = paginate(tokens, request.query, 20, 1000)
    return 200, envelope_ok([token_view(t) for t in chunk], info)


def create_token(state, request):
    body = request.body or {}
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise validation_error("name is required", "/name")
    duration = body.get("duration", DEFAULT_DURATION)
    _check_duration(duration)
    previous = _check_time(body, "previous_client_secret_expires_at")
    version = body.get("client_secret_version", 1)
    if not isinstance(version, (int, float)) or isinstance(version, bool) or version < 1:
        raise validation_error("client_secret_version must be a number >= 1", "/client_secret_version")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise validation_error("enabled must be a boolean", "/enabled")
    moment = now()
    scope, scope_id = request.scope
    token = {
        "id": state.new_uuid(),
        "client_id": state.new_hex(16) + ".access",
        "name": body["name"],
        "duration": duration,
        "expires_at": _expiry(duration, moment),
        "created_at": stamp(moment),
        "updated_at": stamp(moment),
        "last_seen_at": None,
        "client_secret_version": version,
        "previous_client_secret_expires_at": stamp(previous) if previous else None,
        "enabled": enabled,
        "_scope": [scope, scope_id],
        "_secret": new_client_secret(),
        "_previous_secret": None,
        "_previous_secret_expires_at": None,
    }
    state.data["service_tokens"][token["id"]] = token
    return 201, envelope_ok(token_view(token, token["_secret"]))


def get_token(state, request):
    return 200, envelope_ok(token_view(_token(state, request)))


def update_token(state, request):
    token = _token(state, request)
    body = request.body or {}
    # every field is checked before anything changes: a refused update leaves the token as it was
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        raise validation_error("name must be a non-empty string", "/name")
    if "duration" in body:
        _check_duration(body["duration"])
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise validation_error("enabled must be a boolean", "/enabled")
    previous = _check_time(body, "previous_client_secret_expires_at")
    version = body.get("client_secret_version", token["client_secret_version"])
    if not isinstance(version, (int, float)) or isinstance(version, bool):
        raise validation_error("client_secret_version must be a number", "/client_secret_version")
    if version < token["client_secret_version"]:
        # choice: a lower version is refused (the spec only describes increments)
        raise validation_error("client_secret_version cannot decrease", "/client_secret_version")
    secret = None
    if "name" in body:
        token["name"] = body["name"]
    if "duration" in body:
        token["duration"] = body["duration"]
        token["expires_at"] = _expiry(body["duration"], now())  # docs: expiry resets relative to the update
    if "enabled" in body:
        token["enabled"] = body["enabled"]
    if version > token["client_secret_version"]:
        token["client_secret_version"] = version
        secret = _set_secret(token, previous)  # a version bump rotates (2026), with the given grace period
    elif previous is not None:
        token["previous_client_secret_expires_at"] = stamp(previous)
        token["_previous_secret_expires_at"] = stamp(previous)
    token["updated_at"] = stamp()
    return 200, envelope_ok(token_view(token, secret))


def delete_token(state, request):
    token = _token(state, request)
    del state.data["service_tokens"][token["id"]]
    return 200, envelope_ok(token_view(token))


def refresh_token(state, request):
    token = _token(state, request)
    # docs: extends the lifetime by one year. choice: the new expiry is one year from now
    token["expires_at"] = stamp(now() + datetime.timedelta(days=365)) if token["duration"] != "forever" else None
    token["updated_at"] = stamp()
    return 200, envelope_ok(token_view(token))


def rotate_token(state, request):
    token = _token(state, request)
    body = request.body or {}
    if not isinstance(body, dict):
        raise validation_error("Request body must be a JSON object")
    previous = _check_time(body, "previous_client_secret_expires_at")
    secret = _set_secret(token, previous)
    token["client_secret_version"] = token["client_secret_version"] + 1  # choice: rotate bumps the version
    token["updated_at"] = stamp()
    return 200, envelope_ok(token_view(token, secret))


def token_secret_valid(token: dict, secret: str, moment: datetime.datetime) -> bool:
    """Whether ``secret`` is the token's current secret or its previous one within the grace period."""
    if not token.get("enabled", True):
        return False
    if token.get("expires_at") and parse_time(token["expires_at"]) <= moment:
        return False
    if token.get("_secret") and secrets.compare_digest(token["_secret"], secret):
        return True
    previous, until = token.get("_previous_secret"), token.get("_previous_secret_expires_at")
    return bool(previous and until and secrets.compare_digest(previous, secret) and parse_time(until) > moment)


# --- tunnels --------------------------------------------------------------------------------------------------
def _tunnel(state, request, deleted_ok=True) -> dict:
    tunnel = state.data["tunnels"].get(request.params["tunnel_id"])
    if tunnel is None or (not deleted_ok and tunnel["deleted_at"]):
        raise not_found("unknown tunnel", request.path)
    return tunnel


def tunnel_view(tunnel: dict) -> dict:
    view = public(tunnel)
    view["connections"] = []  # deprecated field: empty, connectors are listed by /connections
    return view


def _check_secret(value) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise validation_error("tunnel_secret must be base64", "/tunnel_secret") from None
    if len(raw) < 32:
        raise validation_error("tunnel_secret must be at least 32 bytes (base64 encoded)", "/tunnel_secret")


def list_tunnels(state, request):
    tunnels = sorted(state.data["tunnels"].values(), key=lambda t: t["created_at"])
    query = request.query
    if first(query, "name") is not None:
        tunnels = [t for t in tunnels if t["name"] == first(query, "name")]
    deleted = first(query, "is_deleted")
    if deleted is not None and deleted != "":
        want = str(deleted).lower() == "true"
        tunnels = [t for t in tunnels if bool(t["deleted_at"]) == want]
    if first(query, "uuid"):
        tunnels = [t for t in tunnels if t["id"] == first(query, "uuid")]
    if first(query, "include_prefix"):
        tunnels = [t for t in tunnels if t["name"].startswith(first(query, "include_prefix"))]
    if first(query, "exclude_prefix"):
        tunnels = [t for t in tunnels if not t["name"].startswith(first(query, "exclude_prefix"))]
    if first(query, "status"):
        tunnels = [t for t in tunnels if t["status"] == first(query, "status")]
    if first(query, "existed_at"):
        try:
            moment = parse_time(first(query, "existed_at"))
        except ValueError:
            raise validation_error("existed_at must be an RFC 3339 date-time", "/existed_at") from None
        tunnels = [
            t
            for t in tunnels
            if parse_time(t["created_at"]) <= moment and (not t["deleted_at"] or parse_time(t["deleted_at"]) > moment)
        ]
    chunk, info = paginate(tunnels, query, 20, 1000)  # choice: default per_page 20 (schema: 1..1000)
    return 200, envelope_ok([tunnel_view(t) for t in chunk], info)


def create_tunnel(state, request):
    body = request.body or {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise validation_error("name is required", "/name")
    if UUID_RE.match(name):
        raise validation_error("tunnel name must not be a UUID", "/name")
    config_src = body.get("config_src", "local")
    secret = body.get("tunnel_secret")
    if secret is None:
        if config_src == "local":
            # choice: a locally managed tunnel needs the secret its credentials file will carry
            raise validation_error("tunnel_secret is required for config_src local", "/tunnel_secret")
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
    _check_secret(secret)
    for other in state.data["tunnels"].values():
        if other["name"] == name and not other["deleted_at"]:
            # choice: the spec gives 409 without a code; 1013 with this message
            raise ApiError(409, 1013, "You already have a tunnel with this name.")
    moment = stamp()
    tunnel = {
        "id": state.new_uuid(),
        "account_tag": state.account_id,
        "name": name,
        "created_at": moment,
        "deleted_at": None,
        "conns_active_at": None,
        "conns_inactive_at": None,
        "status": "inactive",
        "tun_type": "cfd_tunnel",
        "config_src": config_src,
        "remote_config": config_src == "cloudflare",
        "metadata": {},
        "_secret": secret,
        "_clients": [],
        "_configuration": {
            "account_id": state.account_id,
            "tunnel_id": None,
            "version": 0,
            "config": None,  # choice: null until the first PUT
            "source": config_src,
            "created_at": moment,
        },
    }
    tunnel["_configuration"]["tunnel_id"] = tunnel["id"]
    state.data["tunnels"][tunnel["id"]] = tunnel
    view = tunnel_view(tunnel)
    # choice: like cloudflared's create, the secret comes back once, in credentials_file (the token does not)
    view["credentials_file"] = {
        "AccountTag": state.account_id,
        "TunnelID": tunnel["id"],
        "TunnelName": name,
        "TunnelSecret": secret,
    }
    return 200, envelope_ok(view)


def get_tunnel(state, request):
    return 200, envelope_ok(tunnel_view(_tunnel(state, request)))


def update_tunnel(state, request):
    tunnel = _tunnel(state, request, deleted_ok=False)
    body = request.body or {}
    if "tunnel_secret" in body:
        _check_secret(body["tunnel_secret"])  # checked first: a refused update changes nothing
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"].strip() or UUID_RE.match(body["name"]):
            raise validation_error("name must be a non-empty string that is not a UUID", "/name")
        if any(
            t["name"] == body["name"] and not t["deleted_at"] and t is not tunnel
            for t in state.data["tunnels"].values()
        ):
            raise ApiError(409, 1013, "You already have a tunnel with this name.")
        tunnel["name"] = body["name"]
    if "tunnel_secret" in body:
        tunnel["_secret"] = body["tunnel_secret"]
    return 200, envelope_ok(tunnel_view(tunnel))


def delete_tunnel(state, request):
    tunnel = _tunnel(state, request, deleted_ok=False)
    cascade = str(first(request.query, "cascade") or "").lower() == "true"
    if tunnel["_clients"] and not cascade:
        # choice: code 1022; cloudflared's wording for a tunnel with active connections
        raise ApiError(400, 1022, "Cannot delete tunnel because it has active connections.")
    _drop_clients(tunnel, None)
    tunnel["deleted_at"] = stamp()
    return 200, envelope_ok(tunnel_view(tunnel))


def _drop_clients(tunnel: dict, client_id: str | None) -> None:
    before = len(tunnel["_clients"])
    tunnel["_clients"] = [c for c in tunnel["_clients"] if client_id is not None and c["id"] != client_id]
    if before and not tunnel["_clients"]:
        tunnel["status"] = "inactive" if not tunnel["_clients"] else tunnel["status"]
        tunnel["conns_inactive_at"] = stamp()


def list_connections(state, request):
    tunnel = _tunnel(state, request)
    return 200, envelope_ok(list(tunnel["_clients"]), None)


def delete_connections(state, request):
    tunnel = _tunnel(state, request, deleted_ok=False)
    _drop_clients(tunnel, first(request.query, "client_id"))
    return 200, envelope_ok({})


def get_configuration(state, request):
    return 200, envelope_ok(dict(_tunnel(state, request, deleted_ok=False)["_configuration"]))


def put_configuration(state, request):
    tunnel = _tunnel(state, request, deleted_ok=False)
    body = request.body or {}
    config = body.get("config")
    if not isinstance(config, dict):
        raise validation_error("config is required", "/config")
    ingress = config.get("ingress") or []
    for index, rule in enumerate(ingress[:-1]):
        if not rule.get("hostname"):
            raise validation_error(
                f"ingress rule #{index + 1} has no hostname: only the last rule may be a catch-all",
                f"/config/ingress/{index}/hostname",
            )
    # choice: a PUT on a config_src local tunnel is accepted too (the spec: "only meaningful" for cloudflare ones)
    configuration = tunnel["_configuration"]
    configuration.update(config=config, version=configuration["version"] + 1, source="cloudflare")
    return 200, envelope_ok(dict(configuration))


def get_token_string(state, request):
    tunnel = _tunnel(state, request, deleted_ok=False)
    payload = {"a": state.account_id, "t": tunnel["id"], "s": tunnel["_secret"]}
    token = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return 200, envelope_ok(token)


def connect_tunnel(state, tunnel_id: str, client_id: str | None = None, version: str = "2026.11.1") -> dict:
    """Test helper: a cloudflared connector attaches to the tunnel (4 connections, status healthy)."""
    tunnel = state.data["tunnels"][tunnel_id]
    moment = stamp()
    client = {
        "id": client_id or state.new_uuid(),
        "arch": "linux_amd64",
        "config_version": tunnel["_configuration"]["version"],
        "version": version,
        "run_at": moment,
        "features": ["ha-origin", "serialized_headers"],
        "conns": [
            {
                "id": state.new_uuid(),
                "colo_name": colo,
                "is_pending_reconnect": False,
                "opened_at": moment,
                "origin_ip": "192.0.2.10",
                "uuid": state.new_uuid(),
                "client_id": None,
                "client_version": version,
            }
            for colo in ("fra01", "ams01", "fra08", "ams04")
        ],
    }
    for conn in client["conns"]:
        conn["client_id"] = client["id"]
    tunnel["_clients"].append(client)
    tunnel["status"] = "healthy"
    tunnel["conns_active_at"] = moment
    return client


HANDLERS = {
    "access-service-tokens-list-service-tokens": list_tokens,
    "zone-level-access-service-tokens-list-service-tokens": list_tokens,
    "access-service-tokens-create-a-service-token": create_token,
    "zone-level-access-service-tokens-create-a-service-token": create_token,
    "access-service-tokens-get-a-service-token": get_token,
    "zone-level-access-service-tokens-get-a-service-token": get_token,
    "access-service-tokens-update-a-service-token": update_token,
    "zone-level-access-service-tokens-update-a-service-token": update_token,
    "access-service-tokens-delete-a-service-token": delete_token,
    "zone-level-access-service-tokens-delete-a-service-token": delete_token,
    "access-service-tokens-refresh-a-service-token": refresh_token,
    "access-service-tokens-rotate-a-service-token": rotate_token,
    "cloudflare-tunnel-list-cloudflare-tunnels": list_tunnels,
    "cloudflare-tunnel-create-a-cloudflare-tunnel": create_tunnel,
    "cloudflare-tunnel-get-a-cloudflare-tunnel": get_tunnel,
    "cloudflare-tunnel-update-a-cloudflare-tunnel": update_tunnel,
    "cloudflare-tunnel-delete-a-cloudflare-tunnel": delete_tunnel,
    "cloudflare-tunnel-list-cloudflare-tunnel-connections": list_connections,
    "cloudflare-tunnel-clean-up-cloudflare-tunnel-connections": delete_connections,
    "cloudflare-tunnel-configuration-get-configuration": get_configuration,
    "cloudflare-tunnel-configuration-put-configuration": put_configuration,
    "cloudflare-tunnel-get-a-cloudflare-tunnel-token": get_token_string,
}
