# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cloudflare emulator handlers: Access applications (account and zone scope), app-scoped ("legacy") policies,
reusable policies (account level), make_reusable (2026), and the edge decision ``access_allows``.

Contract: tests/support/cloudflare_specs/cloudflare-access-apps.json (summary = the 2026 contract).
"""

from __future__ import annotations

import re
import secrets

from tests.support.cloudflare_api import (
    ApiError,
    envelope_ok,
    go_duration_seconds,
    not_found,
    now,
    paginate,
    public,
    stamp,
    validation_error,
)
from tests.support.cloudflare_objects import token_secret_valid

DECISIONS = ("allow", "deny", "non_identity", "bypass")
POLICY_DEFAULTS = {
    "exclude": [],
    "require": [],
    "session_duration": "24h",
    "isolation_required": False,
    "approval_required": False,
    "purpose_justification_required": False,
}
POLICY_FIELDS = (
    "name",
    "decision",
    "include",
    "exclude",
    "require",
    "session_duration",
    "isolation_required",
    "approval_required",
    "approval_groups",
    "purpose_justification_required",
    "purpose_justification_prompt",
    "mfa_config",
    "connection_rules",
)
# choice: the access code family for semantic refusals the spec does not enumerate
ACCESS_CODE = 12130
UUID_ANY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --- policies -------------------------------------------------------------------------------------------------
def _check_policy_body(body: dict, where: str = "") -> None:
    for name in ("name", "decision", "include"):
        if name not in body:
            raise validation_error(f"{name} is required", f"{where}/{name}")
    if body["decision"] not in DECISIONS:
        raise validation_error(f"decision must be one of {', '.join(DECISIONS)}", f"{where}/decision")
    if not isinstance(body["include"], list) or not body["include"]:
        raise validation_error("include must hold at least one rule", f"{where}/include")
    for kind in ("include", "exclude", "require"):
        for index, rule in enumerate(body.get(kind) or []):
            if not isinstance(rule, dict) or len(rule) != 1:
                raise validation_error("each rule is an object with exactly one key", f"{where}/{kind}/{index}")
            key, value = next(iter(rule.items()))
            if key == "service_token" and not (isinstance(value, dict) and isinstance(value.get("token_id"), str)):
                raise validation_error("service_token.token_id is required", f"{where}/{kind}/{index}/service_token")
            if key == "any_valid_service_token" and value != {}:
                raise validation_error("any_valid_service_token is an empty object", f"{where}/{kind}/{index}")
            if key in ("service_token", "any_valid_service_token") and body["decision"] not in (
                "non_identity",
                "bypass",
            ):
                # docs: the Service Token selectors require the Service Auth action
                raise ApiError(
                    400,
                    ACCESS_CODE,
                    f"{key} rules require the non_identity (Service Auth) decision",
                    f"{where}/{kind}/{index}",
                )
    if "session_duration" in body:
        try:
            go_duration_seconds(body["session_duration"])
        except (ValueError, TypeError):
            raise validation_error(
                "session_duration must be like 300ms or 2h45m", f"{where}/session_duration"
            ) from None


def _new_policy(state, body: dict, app_id: str | None) -> dict:
    moment = stamp()
    policy = dict(POLICY_DEFAULTS)
    policy.update({k: body[k] for k in POLICY_FIELDS if k in body})
    policy.update(id=state.new_uuid(), created_at=moment, updated_at=moment, _app_id=app_id)
    state.data["access_policies"][policy["id"]] = policy
    return policy


def _replace_policy(policy: dict, body: dict) -> None:
    keep = {k: policy[k] for k in ("id", "created_at", "_app_id")}
    policy.clear()
    policy.update(POLICY_DEFAULTS)
    policy.update({k: body[k] for k in POLICY_FIELDS if k in body})
    policy.update(keep, updated_at=stamp())


def policy_view(state, policy: dict, precedence: int | None = None) -> dict:
    view = public(policy)
    if policy["_app_id"] is None:
        view["reusable"] = True
        view["app_count"] = sum(
            1 for app in state.data["access_apps"].values() for link in app["_links"] if link["id"] == policy["id"]
        )
    if precedence is not None:
        view["precedence"] = precedence
    return view


def _reusable(state, request) -> dict:
    policy = state.data["access_policies"].get(request.params["policy_id"])
    if policy is None or policy["_app_id"] is not None:
        raise not_found("unknown reusable policy", request.path)
    return policy


def list_reusable(state, request):
    items = [p for p in state.data["access_policies"].values() if p["_app_id"] is None]
    items.sort(key=lambda p: p["created_at"])
    chunk, info = paginate(items, request.query, 100, 1000)
    return 200, envelope_ok([policy_view(state, p) for p in chunk], info)


def create_reusable(state, request):
    _check_policy_body(request.body)
    policy = _new_policy(state, request.body, None)  # a precedence in the body is ignored (cloudflare-go)
    return 201, envelope_ok(policy_view(state, policy))


def get_reusable(state, request):
    return 200, envelope_ok(policy_view(state, _reusable(state, request)))


def put_reusable(state, request):
    policy = _reusable(state, request)
    _check_policy_body(request.body)
    _replace_policy(policy, request.body)
    return 200, envelope_ok(policy_view(state, policy))


def delete_reusable(state, request):
    policy = _reusable(state, request)
    if policy_view(state, policy)["app_count"]:
        # choice: the API's answer for a policy still linked is not documented; refused (dashboard: unlink first)
        raise ApiError(400, ACCESS_CODE, "the policy is still used by Access applications; remove it from them first")
    del state.data["access_policies"][policy["id"]]
    return 202, envelope_ok({"id": policy["id"]})


# --- applications ---------------------------------------------------------------------------------------------
def _apps(state, request) -> list[dict]:
    return [a for a in state.data["access_apps"].values() if a["_scope"] == list(request.scope)]


def _app(state, request) -> dict:
    app = state.data["access_apps"].get(request.params["app_id"])
    if app is None or app["_scope"] != list(request.scope):
        raise not_found("unknown Access application", request.path)
    return app


def app_view(state, app: dict) -> dict:
    view = public(app)
    view["policies"] = [
        policy_view(state, state.data["access_policies"][link["id"]], link["precedence"]) for link in app["_links"]
    ]
    return view


def _hosts(body: dict) -> list[str]:
    destinations = body.get("destinations")
    if destinations:
        return [d["uri"] for d in destinations if d.get("type", "public") == "public" and d.get("uri")]
    if body.get("self_hosted_domains"):
        return list(body["self_hosted_domains"])
    return [body["domain"]] if body.get("domain") else []


def _resolve_links(state, request, body: dict, app: dict | None) -> list[dict]:
    """The policies array -> [{id, precedence}], creating inline (app-scoped) policies."""
    items = body.get("policies")
    if items is None:
        # choice: a PUT without policies keeps the links (undocumented); create starts with none
        return list(app["_links"]) if app else []
    if not isinstance(items, list):
        raise validation_error("policies must be an array", "/policies")
    kinds, links = set(), []
    for index, item in enumerate(items):
        where = f"/policies/{index}"
        if isinstance(item, str):
            policy_id, precedence, kind = item, index + 1, "reusable"
        elif isinstance(item, dict) and ("name" in item or "decision" in item or "include" in item):
            _check_policy_body(item, where)
            existing = state.data["access_policies"].get(item.get("id") or "")
            if existing is not None and existing["_app_id"] == (app or {}).get("id"):
                _replace_policy(existing, item)
                policy = existing
            else:
                policy = _new_policy(state, item, None)
            policy_id, precedence, kind = policy["id"], item.get("precedence", index + 1), "inline"
        elif isinstance(item, dict) and "id" in item:
            policy_id, precedence, kind = item["id"], item.get("precedence", index + 1), "reusable"
        else:
            raise validation_error("a policy is a UUID, a link (id, precedence) or a policy object", where)
        policy = state.data["access_policies"].get(policy_id)
        if policy is None or (kind == "reusable" and policy["_app_id"] not in (None, (app or {}).get("id"))):
            raise ApiError(404, ACCESS_CODE, f"policy {policy_id} not found", where)
        kinds.add("inline" if policy["_app_id"] is not None or kind == "inline" else "reusable")
        links.append({"id": policy_id, "precedence": precedence})
    if len(kinds) > 1:
        raise ApiError(400, ACCESS_CODE, "Reusable and inline policies are mutually exclusive.", "/policies")
    precedences = [link["precedence"] for link in links]
    if len(set(precedences)) != len(precedences):
        raise validation_error("precedence must be unique for each policy within an app", "/policies")
    return links


def _check_app_body(state, request, body: dict, app: dict | None) -> None:
    if "type" not in body:
        raise validation_error("type is required", "/type")
    if body["type"] == "self_hosted" and not body.get("domain") and not body.get("destinations"):
        raise validation_error("domain is required for a self_hosted application", "/domain")
    if "session_duration" in body:
        try:
            go_duration_seconds(body["session_duration"])
        except (ValueError, TypeError):
            raise validation_error("session_duration must be like 300ms or 2h45m", "/session_duration") from None
    hosts = {h.lower() for h in _hosts(body)}
    for other in _apps(state, request):
        if other is not app and hosts & {h.lower() for h in other["self_hosted_domains"]}:
            # choice: a second application for the same domain in the same scope is refused (code undocumented)
            raise ApiError(
                400, ACCESS_CODE, f"An application with the domain {sorted(hosts)[0]} already exists.", "/domain"
            )


def _store_app(state, request, body: dict, app: dict | None, links: list[dict]) -> dict:
    moment = stamp()
    kept = (
        {"id": app["id"], "aud": app["aud"], "created_at": app["created_at"]}
        if app
        else {
            "id": state.new_uuid(),
            "aud": secrets.token_hex(32),
            "created_at": moment,
        }
    )
    stored = {
        "session_duration": "24h",
        "app_launcher_visible": True,
        "auto_redirect_to_identity": False,
        "enable_binding_cookie": False,
        "http_only_cookie_attribute": True,
        "allowed_idps": [],
        "tags": [],
    }
    stored.update({k: v for k, v in body.items() if k not in ("policies", "id", "aud", "created_at", "updated_at")})
    hosts = _hosts(body)
    stored["self_hosted_domains"] = hosts
    stored.setdefault("destinations", [{"type": "public", "uri": h} for h in hosts])
    stored.update(kept, updated_at=moment, _scope=list(request.scope), _links=links)
    if app is not None:
        # app-scoped policies that are no longer linked are deleted with the link (docs: removing deletes it)
        for link in app["_links"]:
            policy = state.data["access_policies"].get(link["id"])
            if policy and policy["_app_id"] == app["id"] and link["id"] not in {x["id"] for x in links}:
                del state.data["access_policies"][link["id"]]
    state.data["access_apps"][stored["id"]] = stored
    for link in links:  # inline policies belong to this app
        policy = state.data["access_policies"][link["id"]]
        if policy["_app_id"] is None and any(link["id"] == x["id"] for x in links) and policy.get("_inline"):
            policy["_app_id"] = stored["id"]
    return stored


def list_apps(state, request):
    apps = sorted(_apps(state, request), key=lambda a: a["created_at"])
    query = request.query
    exact = str((query.get("exact") or ["false"])[0]).lower() == "true"
    for name in ("name", "domain", "aud"):
        wanted = (query.get(name) or [None])[0]
        if wanted is None:
            continue
        if name == "aud" or exact:
            apps = [a for a in apps if str(a.get(name) or "") == wanted]
        else:  # choice: without exact=true a case-insensitive substring match
            apps = [a for a in apps if wanted.lower() in str(a.get(name) or "").lower()]
    search = (query.get("search") or [None])[0]
    if search:
        apps = [a for a in apps if search.lower() in (a.get("name", "") + " " + a.get("domain", "")).lower()]
    chunk, info = paginate(apps, query, 100, 1000)  # choice: default per_page 100 (not documented for apps)
    return 200, envelope_ok([app_view(state, a) for a in chunk], info)


def create_app(state, request):
    body = request.body
    _check_app_body(state, request, body, None)
    links = _inline_aware_links(state, request, body, None)
    app = _store_app(state, request, body, None, links)
    return 201, envelope_ok(app_view(state, app))


def _inline_aware_links(state, request, body, app):
    """_resolve_links, with the inline policies it made marked; on a refusal nothing it made is kept."""
    before = set(state.data["access_policies"])
    try:
        links = _resolve_links(state, request, body, app)
    except ApiError:
        for policy_id in set(state.data["access_policies"]) - before:
            del state.data["access_policies"][policy_id]
        raise
    for policy_id in set(state.data["access_policies"]) - before:
        state.data["access_policies"][policy_id]["_inline"] = True
    return links


def get_app(state, request):
    return 200, envelope_ok(app_view(state, _app(state, request)))


def put_app(state, request):
    app = _app(state, request)
    _check_app_body(state, request, request.body, app)
    links = _inline_aware_links(state, request, request.body, app)
    stored = _store_app(state, request, request.body, app, links)
    return 200, envelope_ok(app_view(state, stored))


def delete_app(state, request):
    app = _app(state, request)
    for link in app["_links"]:
        policy = state.data["access_policies"].get(link["id"])
        if policy and policy["_app_id"] == app["id"]:
            del state.data["access_policies"][link["id"]]
    del state.data["access_apps"][app["id"]]
    return 202, envelope_ok({"id": app["id"]})


# --- app-scoped policies --------------------------------------------------------------------------------------
def _app_policy(state, request, app: dict) -> tuple[dict, dict]:
    for link in app["_links"]:
        if link["id"] == request.params["policy_id"]:
            return state.data["access_policies"][link["id"]], link
    raise not_found("unknown policy of this application", request.path)


def list_app_policies(state, request):
    app = _app(state, request)
    views = [
        policy_view(state, state.data["access_policies"][link_["id"]], link_["precedence"]) for link_ in app["_links"]
    ]
    chunk, info = paginate(views, request.query, 200, 1000)
    return 200, envelope_ok(chunk, info)


def create_app_policy(state, request):
    app = _app(state, request)
    body = request.body
    _check_policy_body(body)
    if any(state.data["access_policies"][link_["id"]]["_app_id"] is None for link_ in app["_links"]):
        raise ApiError(400, ACCESS_CODE, "Reusable and inline policies are mutually exclusive.", "/policies")
    precedence = body.get("precedence", max([link_["precedence"] for link_ in app["_links"]] or [0]) + 1)
    if any(link_["precedence"] == precedence for link_ in app["_links"]):
        raise validation_error("precedence must be unique for each policy within an app", "/precedence")
    policy = _new_policy(state, body, app["id"])
    app["_links"].append({"id": policy["id"], "precedence": precedence})
    app["_links"].sort(key=lambda link_: link_["precedence"])
    return 201, envelope_ok(policy_view(state, policy, precedence))


def get_app_policy(state, request):
    policy, link = _app_policy(state, request, _app(state, request))
    return 200, envelope_ok(policy_view(state, policy, link["precedence"]))


def put_app_policy(state, request):
    app = _app(state, request)
    policy, link = _app_policy(state, request, app)
    if policy["_app_id"] is None:
        raise ApiError(400, ACCESS_CODE, "a reusable policy is changed through /accounts/{account_id}/access/policies")
    _check_policy_body(request.body)
    if "precedence" in request.body:
        if any(link_["precedence"] == request.body["precedence"] and link_ is not link for link_ in app["_links"]):
            raise validation_error("precedence must be unique for each policy within an app", "/precedence")
        link["precedence"] = request.body["precedence"]
        app["_links"].sort(key=lambda link_: link_["precedence"])
    _replace_policy(policy, request.body)
    return 200, envelope_ok(policy_view(state, policy, link["precedence"]))


def delete_app_policy(state, request):
    app = _app(state, request)
    policy, link = _app_policy(state, request, app)
    if policy["_app_id"] is None:
        # 2026: 'To delete a reusable policy, use the /accounts/{account_id}/policies/{uid} endpoint.'
        raise ApiError(400, ACCESS_CODE, "a reusable policy is deleted through /accounts/{account_id}/access/policies")
    app["_links"].remove(link)
    del state.data["access_policies"][policy["id"]]
    return 202, envelope_ok({"id": policy["id"]})


def make_reusable(state, request):
    app = _app(state, request)
    policy, _link = _app_policy(state, request, app)
    policy["_app_id"] = None
    policy.pop("_inline", None)
    policy["updated_at"] = stamp()
    views = [policy_view(state, policy)]
    return 200, envelope_ok(views, {"page": 1, "per_page": 1, "count": 1, "total_count": 1, "total_pages": 1})


# --- the edge -------------------------------------------------------------------------------------------------
def _host_matches(pattern: str, hostname: str) -> bool:
    host = pattern.split("/", 1)[0].lower()
    hostname = hostname.split(":", 1)[0].lower()
    if host.startswith("*."):
        return hostname.endswith(host[1:])
    return host == hostname


def _presented_token(state, app: dict, headers) -> dict | None:
    lowered = {k.lower(): v for k, v in dict(headers).items()}
    client_id = lowered.get("cf-access-client-id")
    secret = lowered.get("cf-access-client-secret")
    if not client_id or not secret:
        return None
    moment = now()
    scopes = (["accounts", state.account_id], app["_scope"])
    for token in state.data["service_tokens"].values():
        # choice: account tokens serve every app of the account; zone tokens only the apps of their zone
        if token["client_id"] == client_id and token["_scope"] in scopes and token_secret_valid(token, secret, moment):
            token["last_seen_at"] = stamp(moment)
            return token
    return None


def _rule_matches(rule: dict, token: dict | None) -> bool:
    key, value = next(iter(rule.items()))
    if key == "everyone":
        return True
    if key == "service_token":
        return token is not None and value.get("token_id") == token["id"]
    if key == "any_valid_service_token":
        return token is not None
    return False  # identity, network and device rules: a machine client at the emulated edge has none


def _policy_admits(policy: dict, token: dict | None) -> bool:
    return (
        any(_rule_matches(r, token) for r in policy["include"])
        and all(_rule_matches(r, token) for r in policy.get("require") or [])
        and not any(_rule_matches(r, token) for r in policy.get("exclude") or [])
    )


def access_allows(state, hostname: str, headers) -> bool:
    """What Access decides at the edge for a request without an identity login: Bypass and Service Auth policies
    first (precedence order), then Block; Allow needs an IdP login, which a machine client never has.
    choice: the evaluation order is the Cloudflare One docs' (not in the spec); no application = not protected."""
    apps = [
        a
        for a in state.data["access_apps"].values()
        if any(_host_matches(h, hostname) for h in a["self_hosted_domains"])
    ]
    if not apps:
        return True
    for app in apps:
        token = _presented_token(state, app, headers)
        policies = [
            state.data["access_policies"][link_["id"]]
            for link_ in sorted(app["_links"], key=lambda link_: link_["precedence"])
        ]
        admitted = False
        for policy in policies:
            if policy["decision"] in ("bypass", "non_identity") and _policy_admits(policy, token):
                admitted = True
                break
        if not admitted:
            return False
        if any(p["decision"] == "deny" and _policy_admits(p, token) for p in policies):
            return False
    return True


HANDLERS = {
    "access-applications-list-access-applications": list_apps,
    "zone-level-access-applications-list-access-applications": list_apps,
    "access-applications-add-an-application": create_app,
    "zone-level-access-applications-add-a-bookmark-application": create_app,
    "access-applications-get-an-access-application": get_app,
    "zone-level-access-applications-get-an-access-application": get_app,
    "access-applications-update-an-access-application": put_app,
    "zone-level-access-applications-update-a-bookmark-application": put_app,
    "access-applications-delete-an-access-application": delete_app,
    "zone-level-access-applications-delete-an-access-application": delete_app,
    "access-policies-list-access-app-policies": list_app_policies,
    "zone-level-access-policies-list-access-policies": list_app_policies,
    "access-policies-create-an-access-policy": create_app_policy,
    "zone-level-access-policies-create-an-access-policy": create_app_policy,
    "access-policies-get-an-access-policy": get_app_policy,
    "zone-level-access-policies-get-an-access-policy": get_app_policy,
    "access-policies-update-an-access-policy": put_app_policy,
    "zone-level-access-policies-update-an-access-policy": put_app_policy,
    "access-policies-delete-an-access-policy": delete_app_policy,
    "zone-level-access-policies-delete-an-access-policy": delete_app_policy,
    "access-policies-list-access-reusable-policies": list_reusable,
    "access-policies-create-an-access-reusable-policy": create_reusable,
    "access-policies-get-an-access-reusable-policy": get_reusable,
    "access-policies-update-an-access-reusable-policy": put_reusable,
    "access-policies-delete-an-access-reusable-policy": delete_reusable,
    "access-policies-make-reusable": make_reusable,
}

# 2026 operations missing from the 2024 subset: (method, path regex, operation name). make_reusable: empty body.
EXTRA_ROUTES = (
    (
        "PUT",
        re.compile(
            r"^/accounts/(?P<account_id>[^/]+)/access/apps/(?P<app_id>[^/]+)/policies/(?P<policy_id>[^/]+)/make_reusable$"
        ),
        "access-policies-make-reusable",
    ),
)
