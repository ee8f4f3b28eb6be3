# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Cloudflare emulator's objects and the request pipeline: auth -> route -> path/query/body validation ->
handler. The handlers live in cloudflare_objects.py (service tokens, tunnels), cloudflare_access.py (Access apps
and policies, and the edge decision) and cloudflare_dns.py (zones, DNS records).

Where the specs are silent the emulator makes a choice; each is marked ``# choice:`` in the code.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import uuid
from pathlib import Path

import jsonschema

from tests.support import cloudflare_schema

ZONE_NAME = "oceanid.example"
# choice: the specs name no code for schema validation failures of Access/tunnel bodies; 1001 is used for all of them
VALIDATION_CODE = 1001
NOT_FOUND_CODE = 7003
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class ApiError(Exception):
    """A v4 failure envelope: ``status`` and errors [{code, message[, source.pointer][, error_chain]}]."""

    def __init__(self, status: int, code: int, message: str, pointer: str | None = None, chain=None, more=None):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.errors = [_error(code, message, pointer, chain)] + list(more or [])

    def document(self) -> dict:
        return {"success": False, "errors": self.errors, "messages": [], "result": None}


def _error(code: int, message: str, pointer: str | None = None, chain=None) -> dict:
    error: dict = {"code": code, "message": message}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    if chain:
        error["error_chain"] = [{"code": c, "message": m} for c, m in chain]
    return error


def envelope_error(code: int, message: str) -> dict:
    return {"success": False, "errors": [_error(code, message)], "messages": [], "result": None}


def envelope_ok(result, result_info: dict | None = None) -> dict:
    document = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        document["result_info"] = result_info
    return document


def validation_error(message: str, pointer: str | None = None, code: int = VALIDATION_CODE) -> ApiError:
    return ApiError(400, code, message, pointer)


def not_found(what: str, path: str) -> ApiError:
    # choice: the specs give 404 for unknown ids but no code; 7003 with Cloudflare's routing wording
    return ApiError(
        404, NOT_FOUND_CODE, f"Could not route to {path}, perhaps your object identifier is invalid? ({what})"
    )


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def stamp(moment: datetime.datetime | None = None) -> str:
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime.datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment.astimezone(datetime.UTC)


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION = re.compile(r"^([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def go_duration_seconds(text: str) -> float:
    """Go's time.ParseDuration (no sign): '8760h', '2h45m', '300ms'. Raises ValueError ('d' is not a unit)."""
    rest, total = text, 0.0
    if not rest:
        raise ValueError("empty duration")
    while rest:
        found = _GO_DURATION.match(rest)
        if not found:
            raise ValueError(f"time: invalid duration {text!r}")
        total += float(found.group(1)) * _GO_UNITS[found.group(2)]
        rest = rest[found.end() :]
    return total


def paginate(items: list, query: dict, default_per_page: int, max_per_page: int | None = None) -> tuple[list, dict]:
    page = int(float(first(query, "page") or 1))
    per_page = int(float(first(query, "per_page") or default_per_page))
    if page < 1:
        raise validation_error("page must be at least 1", "/page")
    if per_page < 1 or (max_per_page is not None and per_page > max_per_page):
        raise validation_error(f"per_page must be between 1 and {max_per_page}", "/per_page")
    chunk = items[(page - 1) * per_page : page * per_page]
    total_pages = (len(items) + per_page - 1) // per_page if items else 0
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items)}
    info["total_pages"] = total_pages
    return chunk, info


def first(query: dict, name: str):
    values = query.get(name)
    if values is None:
        return None
    return values[0] if isinstance(values, list) else values


def public(obj: dict) -> dict:
    """The object without the emulator's private keys (those starting with '_')."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


# PATCH bodies are partial (2026 schema dns-records_dns-record-patch) while the 2024 subset gives PATCH the full
# record schema: the handler validates the merged record instead.
VALIDATED_AFTER_MERGE = {"dns-records-for-a-zone-patch-dns-record"}


def check_body(op, body) -> None:
    """ApiError 400 listing every schema violation of ``body`` (first one in the message)."""
    if op.body_schema is None:
        return
    ttl = body.get("ttl") if isinstance(body, dict) and op.spec == "cloudflare-dns-records.json" else 1
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl != 1 and not 60 <= ttl <= 86400:
        # Cloudflare answers a TTL out of range with its DNS code, not a schema error (summary.error_codes 9021)
        raise ApiError(400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for automatic.", "/ttl")
    errors = cloudflare_schema.body_errors(op, body)
    if errors:
        raise ApiError(
            400,
            VALIDATION_CODE,
            f"Invalid request body: {errors[0][1]}",
            errors[0][0],
            more=[_error(VALIDATION_CODE, m, p) for p, m in errors[1:]],
        )


class Request:
    """One routed request as the handlers see it."""

    def __init__(self, method, path, params, query, body, headers, operation_id):
        self.method = method
        self.path = path
        self.params = params
        self.query = query
        self.body = body
        self.headers = headers
        self.operation_id = operation_id

    @property
    def scope(self) -> tuple[str, str]:
        if "account_id" in self.params:
            return "accounts", self.params["account_id"]
        return "zones", self.params["zone_id"]


# Permission groups a scoped API token may hold (emu.add_api_token). The full token holds all of them.
PERMISSIONS = {
    "access-service-tokens": ("service_tokens:read", "service_tokens:write"),
    "zone-level-access-service-tokens": ("service_tokens:read", "service_tokens:write"),
    "cloudflare-tunnel": ("tunnel:read", "tunnel:write"),
    "access-applications": ("access_apps:read", "access_apps:write"),
    "zone-level-access-applications": ("access_apps:read", "access_apps:write"),
    "access-policies": ("access_apps:read", "access_apps:write"),
    "zone-level-access-policies": ("access_apps:read", "access_apps:write"),
    "dns-records-for-a-zone": ("dns:read", "dns:write"),
    "zones": ("zone:read", "zone:read"),
}
ALL_PERMISSIONS = sorted({p for pair in PERMISSIONS.values() for p in pair})


def _needed_permission(operation_id: str, method: str) -> str | None:
    for prefix, (read, write) in PERMISSIONS.items():
        if operation_id.startswith(prefix):
            return read if method == "GET" else write
    return None


class CloudflareState:
    """Everything the emulator knows; JSON-serialisable ``data`` (secrets included: the state file is 0600)."""

    def __init__(self, data: dict):
        self.data = data

    @classmethod
    def new(cls) -> CloudflareState:
        return cls(
            {
                "account_id": secrets.token_hex(16),
                "zone_id": secrets.token_hex(16),
                "zone_name": ZONE_NAME,
                "api_token": "cfemu-" + secrets.token_urlsafe(30),
                "api_key": secrets.token_hex(19),
                "api_email": "fleet-admin@oceanid.example",
                "scoped_tokens": {},
                "zone_created_on": stamp(),
                "service_tokens": {},
                "tunnels": {},
                "access_apps": {},
                "access_policies": {},
                "dns_records": {},
                "tls": None,
            }
        )

    @classmethod
    def load(cls, state_file: Path | None) -> CloudflareState:
        if state_file is not None and state_file.exists() and state_file.stat().st_size:
            return cls(json.loads(state_file.read_text(encoding="utf-8")))
        return cls.new()

    def save(self, state_file: Path | None) -> None:
        if state_file is None:
            return
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_name(f".{state_file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, state_file)

    # --- identity shortcuts -----------------------------------------------------------------------------------
    account_id = property(lambda self: self.data["account_id"])
    zone_id = property(lambda self: self.data["zone_id"])
    zone_name = property(lambda self: self.data["zone_name"])
    api_token = property(lambda self: self.data["api_token"])
    api_key = property(lambda self: self.data["api_key"])
    api_email = property(lambda self: self.data["api_email"])

    def snapshot(self) -> dict:
        """What tests assert on: the objects without secrets."""
        from tests.support.cloudflare_access import policy_view  # pylint: disable=import-outside-toplevel

        tunnels = []
        for tunnel in self.data["tunnels"].values():
            view = public(tunnel)
            view["configurations"] = tunnel["_configuration"]
            view["connections"] = tunnel["_clients"]
            tunnels.append(view)
        return json.loads(
            json.dumps(
                {
                    "account_id": self.account_id,
                    "zone_id": self.zone_id,
                    "zone_name": self.zone_name,
                    "service_tokens": [public(t) for t in self.data["service_tokens"].values()],
                    "tunnels": tunnels,
                    "access_apps": [public(a) for a in self.data["access_apps"].values()],
                    "access_policies": [policy_view(self, p) for p in self.data["access_policies"].values()],
                    "dns_records": [public(r) for r in self.data["dns_records"].values()],
                }
            )
        )

    def access_allows(self, hostname: str, headers) -> bool:
        from tests.support.cloudflare_access import access_allows  # pylint: disable=import-outside-toplevel

        return access_allows(self, hostname, headers)

    # --- the pipeline -----------------------------------------------------------------------------------------
    def authenticate(self, headers) -> set[str]:
        """The permission groups of the request's credentials; ApiError when they are missing or wrong."""
        authorization = headers.get("Authorization")
        key, email = headers.get("X-Auth-Key"), headers.get("X-Auth-Email")
        if authorization is not None:
            scheme, _space, token = authorization.partition(" ")
            if scheme != "Bearer" or not token.strip() or " " in token.strip():
                raise ApiError(
                    400, 6003, "Invalid request headers", chain=[(6111, "Invalid format for Authorization header")]
                )
            token = token.strip()
            if token == self.api_token:
                return set(ALL_PERMISSIONS)
            if token in self.data["scoped_tokens"]:
                return set(self.data["scoped_tokens"][token])
            # choice: the spec maps invalid credentials to 401 with code 10000 'Authentication error'
            raise ApiError(401, 10000, "Authentication error")
        if key is not None or email is not None:
            if key is None or email is None:
                missing = "X-Auth-Key" if key is None else "X-Auth-Email"
                # choice: code 6003 as for a bad Authorization header; the chain names the missing header
                raise ApiError(400, 6003, "Invalid request headers", chain=[(6003, f"Missing {missing} header")])
            if secrets.compare_digest(key, self.api_key) and email.lower() == self.api_email:
                return set(ALL_PERMISSIONS)
            raise ApiError(401, 10000, "Authentication error")
        raise ApiError(401, 10000, "Authentication error")

    def handle(self, method: str, path: str, query: dict, raw_body: bytes, body, headers) -> tuple[int, dict]:
        from tests.support import cloudflare_access, cloudflare_dns, cloudflare_objects  # pylint: disable=C0415

        handlers = {}
        for module in (cloudflare_objects, cloudflare_access, cloudflare_dns):
            handlers.update(module.HANDLERS)
        op, params, path_known = cloudflare_schema.match(method, path)
        extra = None
        if op is None:
            for extra_method, regex, name in cloudflare_access.EXTRA_ROUTES:
                found = regex.match(path)
                if found and extra_method == method:
                    extra, params = name, found.groupdict()
                    break
                path_known = path_known or bool(found)
        if op is None and extra is None:
            if path_known:
                # choice: the specs do not show the answer to a wrong method on a known path
                raise ApiError(405, 10405, f"Method {method} not allowed for {path}")
            raise ApiError(404, 7003, "No route for the URI")
        granted = self.authenticate(headers)
        operation_id = op.operation_id if op is not None else extra
        needed = _needed_permission(operation_id, method)
        if needed is not None and needed not in granted:
            raise ApiError(403, 10000, "Authentication error")
        self._check_path(params, path)
        if op is not None:
            self._check_query(op, query)
            if raw_body:
                if op.operation_id not in VALIDATED_AFTER_MERGE:
                    check_body(op, body)
            elif op.body_required and method != "DELETE":
                # DELETE: the 2024/2026 schemas declare a required {} body that no client sends; both accepted
                raise validation_error("Request body is required (send {} at minimum)")
        elif raw_body and not isinstance(body, dict):
            raise validation_error("Request body must be a JSON object")
        handler = handlers.get(operation_id)
        if handler is None:
            raise ApiError(404, 7003, "No route for the URI")
        request = Request(method, path, params, query, body, headers, operation_id)
        request.operation = op
        return handler(self, request)

    def _check_path(self, params: dict, path: str) -> None:
        if "account_id" in params and params["account_id"] != self.account_id:
            raise not_found("unknown account", path)
        if "zone_id" in params and params["zone_id"] != self.zone_id:
            raise not_found("unknown zone", path)

    @staticmethod
    def _check_query(op, query: dict) -> None:
        document = cloudflare_schema._documents()[op.spec]  # pylint: disable=protected-access
        for name, schema in op.query_params.items():
            if name not in query:
                continue
            raw = first(query, name)
            resolved = schema
            while "$ref" in resolved:
                resolved = document["components"]["schemas"][resolved["$ref"].rsplit("/", 1)[1]]
            value = _coerce(raw, resolved.get("type"))
            validator = jsonschema.Draft4Validator(dict(schema, components=document["components"]))
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
            if error is not None:
                raise validation_error(f"Invalid query parameter {name}={raw!r}: {error.message}", f"/{name}")

    # --- ids and secrets --------------------------------------------------------------------------------------
    @staticmethod
    def new_uuid() -> str:
        return str(uuid.uuid4())

    @staticmethod
    def new_hex(n: int = 16) -> str:
        return secrets.token_hex(n)


def _coerce(raw, kind):
    if kind in ("number", "integer"):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return raw
        return int(value) if value.is_integer() else value
    if kind == "boolean":
        return {"true": True, "false": False}.get(str(raw).lower(), raw)
    return raw
