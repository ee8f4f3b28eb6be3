# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Cloudflare emulator's routing and request validation, from the OpenAPI subsets in
tests/support/cloudflare_specs/ (verbatim copies of the shared specs ../shared/specs/cloudflare-*.json, see the
README there).

Every operation of the subsets becomes a route; request bodies are validated with jsonschema (draft 4, the closest
to OpenAPI 3.0) against the operation's ``requestBody`` schema with ``$ref`` resolved inside the spec document.
OpenAPI-only keywords are translated (``nullable``), ``readOnly`` properties are not required in requests, and the
few places where the 2024 subset disagrees with what Cloudflare accepts from real clients (documented in the specs'
``summary``) get a small overlay here, each one commented with its reason.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema

SPEC_DIR = Path(__file__).resolve().parent / "cloudflare_specs"
SPEC_FILES = (
    "cloudflare-access-service-tokens.json",
    "cloudflare-tunnels.json",
    "cloudflare-access-apps.json",
    "cloudflare-dns-records.json",
)


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str
    spec: str
    body_schema: dict | None
    body_required: bool
    regex: re.Pattern = field(repr=False, default=None)  # type: ignore[assignment]
    path_params: dict = field(default_factory=dict)
    query_params: dict = field(default_factory=dict)


def _translate(node, components: dict, omitted: set):
    """OpenAPI 3.0 schema -> JSON Schema draft 4 (recursively, on a copy)."""
    if isinstance(node, list):
        return [_translate(item, components, omitted) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        if name in omitted or name not in components:
            if "scim_config" in name:
                # an optional scim_config property wrapper, left out of the subset: not checked
                return {"description": f"omitted from the emulator's subset, not checked: {name}"}
            # left out of the subset (SaaS/OIDC variants): the emulator accepts no such application
            return {"not": {}, "description": f"omitted from the emulator's subset: {name}"}
        return dict(node)
    out = {key: _translate(value, components, omitted) for key, value in node.items()}
    if out.pop("nullable", False):
        if "type" in out:
            kind = out["type"]
            out["type"] = list(kind) + ["null"] if isinstance(kind, list) else [kind, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
    properties = out.get("properties")
    if isinstance(properties, dict) and isinstance(out.get("required"), list):
        read_only = {name for name, prop in properties.items() if isinstance(prop, dict) and prop.get("readOnly")}
        out["required"] = [name for name in out["required"] if name not in read_only] or None
        if out["required"] is None:
            del out["required"]
    return out


# Where the 2024 subset refuses what Cloudflare accepts from real clients (reasons from the specs' summaries).
def _overlay(spec_name: str, components: dict) -> None:
    if spec_name == "cloudflare-dns-records.json":
        # community.general.cloudflare_dns sends "comment": null for a record without a comment and Cloudflare accepts
        # it (summary.community_general_cloudflare_dns.bodies.notes, verified_locally).
        comment = components.get("dns-records_comment")
        if comment is not None:
            comment["type"] = ["string", "null"]
        # dns-records_dns-record serves as request and response schema: its top-level required list names
        # response-only fields (id, proxiable, created_on, modified_on) and content, which structured types (SRV,
        # CAA, ...) do not send. The per-type branches carry the request requirements (type, name, content|data).
        record = components.get("dns-records_dns-record")
        if record is not None:
            record.pop("required", None)
    if spec_name == "cloudflare-access-apps.json":
        # The policies items are a oneOf of {link (id, precedence)}, a UUID string and an inline policy object, but
        # the link has no required keys and neither object forbids others, so every inline policy (a documented
        # form, summary.app_policies_field) matches two branches and would fail oneOf: anyOf here.
        embedded = components.get("access_app_req_embedded_policies", {}).get("properties", {}).get("policies")
        if embedded is not None and "oneOf" in embedded.get("items", {}):
            embedded["items"] = {"anyOf": embedded["items"]["oneOf"]}
    if spec_name == "cloudflare-tunnels.json":
        # The catch-all last rule has only "service" (summary.api_operations PUT /configurations): hostname is not
        # required by the API in practice; the emulator checks "only the last rule may lack a hostname" itself.
        # deleted_at / conns_active_at / conns_inactive_at: typed string, but their own descriptions say "If `null`,
        # ..." and summary.tunnel_object_fields gives "date-time|null".
        for name in ("tunnel_deleted_at", "tunnel_conns_active_at", "tunnel_conns_inactive_at"):
            if name in components:
                components[name]["nullable"] = True
        rule = components.get("tunnel_ingressRule")
        if rule is not None:
            rule["required"] = ["service"]


@cache
def load_specs() -> dict[str, dict]:
    return {name: json.loads((SPEC_DIR / name).read_text(encoding="utf-8")) for name in SPEC_FILES}


@cache
def _documents() -> dict[str, dict]:
    """spec name -> {"components": {"schemas": translated}} (the root every $ref resolves against)."""
    out = {}
    for name, spec in load_specs().items():
        subset = spec["openapi_subset_2024_08"]
        raw = copy.deepcopy(subset["components"]["schemas"])
        _overlay(name, raw)
        omitted = set((subset.get("_omitted_schemas") or {}).get("names", []))
        schemas = {key: _translate(value, raw, omitted) for key, value in raw.items()}
        out[name] = {"components": {"schemas": schemas}}
    return out


@cache
def operations() -> tuple[Operation, ...]:
    ops = []
    documents = _documents()
    for name, spec in load_specs().items():
        subset = spec["openapi_subset_2024_08"]
        raw = subset["components"]["schemas"]
        omitted = set((subset.get("_omitted_schemas") or {}).get("names", []))
        for template, item in subset["paths"].items():
            for method, op in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
                params = list(item.get("parameters", [])) + list(op.get("parameters", []))
                operation = Operation(
                    method=method.upper(),
                    template=template,
                    operation_id=op["operationId"],
                    spec=name,
                    body_schema=_translate(body, raw, omitted) if body is not None else None,
                    body_required=bool((op.get("requestBody") or {}).get("required")),
                    regex=_template_regex(template),
                    path_params={p["name"]: p.get("schema", {}) for p in params if p.get("in") == "path"},
                    query_params={p["name"]: p.get("schema", {}) for p in params if p.get("in") == "query"},
                )
                ops.append(operation)
    del documents
    return tuple(ops)


def _template_regex(template: str) -> re.Pattern:
    pattern = re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile("^" + pattern + "$")


def match(method: str, path: str) -> tuple[Operation | None, dict, bool]:
    """(operation, path params, whether the path exists for another method)."""
    path_known = False
    for op in operations():
        found = op.regex.match(path)
        if found:
            path_known = True
            if op.method == method:
                return op, found.groupdict(), True
    return None, {}, path_known


def body_errors(op: Operation, body) -> list[tuple[str, str]]:
    """[(JSON pointer, message)] for ``body`` against the operation's request schema; [] when valid."""
    if op.body_schema is None:
        return []
    root = dict(_documents()[op.spec])
    schema = dict(op.body_schema, components=root["components"])
    validator = jsonschema.Draft4Validator(schema)
    errors = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        pointer = "/" + "/".join(str(p) for p in error.absolute_path)
        errors.append((pointer, _message(error)))
    return errors


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required":
        return error.message
    where = ".".join(str(p) for p in error.absolute_path) or "body"
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        inner = ".".join(str(p) for p in best.absolute_path) or where
        return f"{inner}: {best.message}"
    return f"{where}: {error.message}"


def response_errors(method: str, path: str, status: int, document) -> list[str]:
    """Where an emulator response disagrees with the operation's response schema for ``status`` (for tests)."""
    op, _params, _known = match(method, path)
    if op is None:
        return [f"no operation {method} {path}"]
    if status >= 400:
        # failures: the 2026 common envelope (some 2024 4XX schemas are allOf(success single, failure), which no
        # document can satisfy: success would have to be true and false)
        envelope = load_specs()[op.spec]["common_envelope_schemas_2026"]["schemas"]
        validator = jsonschema.Draft4Validator(to_json_schema(envelope, "api-response-common-failure"))
        return [f"{method} {op.template} {status}: {e.message[-200:]}" for e in validator.iter_errors(document)]
    subset = load_specs()[op.spec]["openapi_subset_2024_08"]
    responses = subset["paths"][op.template][method.lower()]["responses"]
    response = (
        responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get(f"{str(status)[0]}xx")
    )
    if response is None:
        return [f"{method} {op.template}: status {status} is not among {sorted(responses)}"]
    schema = response["content"]["application/json"]["schema"]
    omitted = set((subset.get("_omitted_schemas") or {}).get("names", []))
    raw = subset["components"]["schemas"]
    full = dict(_translate(schema, raw, omitted), components=_documents()[op.spec]["components"])
    return [
        f"{method} {op.template} {status} at /{'/'.join(map(str, e.absolute_path))}: {e.message[-200:]}"
        for e in jsonschema.Draft4Validator(full).iter_errors(document)
    ]


def to_json_schema(schemas: dict, name: str) -> dict:
    """Component ``name`` of an OpenAPI ``schemas`` dict as a self-contained draft-4 JSON Schema (for tests)."""
    translated = {key: _translate(value, schemas, set()) for key, value in schemas.items()}
    return dict(translated[name], components={"schemas": translated})


def spec_summary(name: str) -> dict:
    return load_specs()[name]["summary"]
