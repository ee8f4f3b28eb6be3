#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: cloudflare_access_application
short_description: A Cloudflare Access self-hosted application that admits only the given service tokens
version_added: 0.1.0
description:
  - Makes sure the Cloudflare Access application named O(name) protects the hostname O(domain) and that its only
    policy is a C(Service Auth) policy (decision C(non_identity)) whose include rules name exactly the service
    tokens in O(service_tokens). Requests to the hostname without the headers of one of those tokens are refused
    at Cloudflare's edge.
  - In an account (O(account_id)) the policy is a reusable policy (C(/accounts/{id}/access/policies)), named
    O(policy_name), linked to the application; this is the form Cloudflare recommends since 2024. In a zone
    (O(zone_id)) reusable policies do not exist, so the policy is an application-scoped one.
  - Policies attached to the application other than O(policy_name) are removed from it, so that the named tokens
    are the only way in.
  - Service tokens are looked up in the same account or zone, by name or by client id; a missing one fails the
    task before anything is changed.
  - O(state=absent) deletes the application and the policy this module created for it (a reusable policy still
    used by another application is kept, with a warning).
options:
  name:
    description:
      - The application's name, unique within the account or zone; the module finds the application by it.
    type: str
    required: true
  domain:
    description:
      - The hostname the application protects, without a scheme (for example C(gpu.oceanid.example)); a path may
        follow (C(gpu.oceanid.example/v2)). Required with O(state=present).
    type: str
  account_id:
    description:
      - The Cloudflare account that holds the application, its policy and the service tokens. Give this or
        O(zone_id).
    type: str
  zone_id:
    description:
      - The zone that holds the application, an application-scoped policy and the (zone-scoped) service tokens.
        Give this or O(account_id).
    type: str
  service_tokens:
    description:
      - The service tokens whose holders alone are admitted, each by its name or its client id
        (C(<32 hex>.access)). Required and not empty with O(state=present).
    type: list
    elements: str
  session_duration:
    description:
      - How long an Access session for the application lasts, as a Go duration (C(24h), C(30m)).
    type: str
    default: 24h
  policy_name:
    description:
      - The name of the policy the module manages. Default C(<name> service auth).
    type: str
  state:
    description:
      - V(present) creates or updates the application and its policy; V(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - oceanid.fleet.cloudflare
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the application, the policies and the service tokens and sends no writing request.
  diff_mode:
    support: full
    details:
      - The diff shows the application's name, domain and session duration and the policy's name, decision and
        admitted tokens (by name).
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - An API token needs the C(Access - Apps and Policies Write) and C(Access - Service Tokens Read) permissions.
  - The hostname must be a proxied DNS name in one of the account's zones (for a Cloudflare Tunnel, the CNAME to
    C(<tunnel id>.cfargotunnel.com)); this module does not create the DNS record.
seealso:
  - module: oceanid.fleet.cloudflare_access_service_token
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Only the adapter's service token reaches the GPU endpoint
  oceanid.fleet.cloudflare_access_application:
    name: gpu-endpoint
    domain: gpu.oceanid.example
    account_id: "{{ fleet_cloudflare_account_id }}"
    api_token: "{{ fleet_cloudflare_api_token }}"
    service_tokens:
      - ls-triton-adapter
    session_duration: 24h
  delegate_to: localhost
  run_once: true

- name: Remove the application and its policy
  oceanid.fleet.cloudflare_access_application:
    name: gpu-endpoint
    account_id: "{{ fleet_cloudflare_account_id }}"
    state: absent
  environment:
    CLOUDFLARE_API_TOKEN: "{{ fleet_cloudflare_api_token }}"
"""

RETURN = r"""
application:
  description:
    - The application as Cloudflare describes it (C(id), C(aud), C(domain), C(name), C(session_duration),
      C(policies), ...). Empty after O(state=absent); predicted (no C(id), no C(aud)) for a new application in
      check mode.
  returned: always
  type: dict
  sample:
    id: 0c6c8c8e-4a52-4f3c-9a0e-6b9b0f3a7d11
    aud: 737646a56ab1df6ec9bddc7e5ca84eaf3b0768850f3ffb5d74f1534911fe3893
    type: self_hosted
    name: gpu-endpoint
    domain: gpu.oceanid.example
    session_duration: 24h
policies:
  description: The policies attached to the application (after this run), each with its C(precedence).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 4f3b0a4e-92f6-4a55-b0f3-1b0a2c9d8e7f
      name: gpu-endpoint service auth
      decision: non_identity
      include:
        - service_token:
            token_id: 3f9c7a42-1b2d-4c8e-9f10-0a1b2c3d4e5f
      precedence: 1
service_token_ids:
  description: The ids of the service tokens the policy admits, in the order of O(service_tokens).
  returned: success and O(state=present)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflare import (
    cloudflare_argument_spec,
    go_duration_ns,
    one_by_name,
    quote_segment,
    run_module,
    same_duration,
    scope_prefix,
    scope_text,
)

DECISION = "non_identity"  # "Service Auth": the decision service-token rules require


def validate_params(params):
    """Error texts for arguments that cannot work (empty = fine)."""
    errors = []
    if not (params.get("name") or "").strip():
        errors.append("name must be a non-empty string")
    if bool(params.get("account_id")) == bool(params.get("zone_id")):
        errors.append("give exactly one of account_id and zone_id (the application's account, or its zone)")
    if params.get("state") == "present":
        domain = params.get("domain") or ""
        if not domain.strip():
            errors.append("domain is required with state=present: the hostname to protect, e.g. gpu.oceanid.example")
        elif "://" in domain or " " in domain or domain.startswith("/"):
            errors.append(
                "domain %r must be a hostname with an optional path and no scheme, e.g. gpu.oceanid.example" % domain
            )
        tokens = params.get("service_tokens") or []
        if not tokens or any(not (t or "").strip() for t in tokens):
            errors.append(
                "service_tokens must list at least one service token (name or client id) with state=present; "
                "an Access application without one would admit no one"
            )
        if go_duration_ns(params.get("session_duration")) is None:
            errors.append(
                "session_duration %r is not a Go duration such as 24h or 30m (units ns, us, ms, s, m, h)"
                % params.get("session_duration")
            )
    return errors


def resolve_tokens(tokens, wanted, where):
    """Token ids for ``wanted`` (names or client ids), in order, without duplicates; ValueError naming the missing."""
    ids, missing = [], []
    for entry in wanted:
        by_client_id = [t for t in tokens if t.get("client_id") == entry]
        if by_client_id:
            token = by_client_id[0]
        else:
            token = one_by_name(tokens, entry, "Access service tokens", where)
        if token is None:
            missing.append(entry)
        elif token["id"] not in ids:
            ids.append(token["id"])
    if missing:
        known = sorted(t.get("name") or t.get("id") for t in tokens)
        raise ValueError(
            "service_tokens: no Access service token named (or with the client id) %s in %s; the tokens there are: %s"
            % (", ".join(repr(m) for m in missing), where, ", ".join(known) if known else "none")
        )
    return ids


def token_ids_of(policy):
    """The service-token ids a policy's include rules name (None when it has any other kind of rule)."""
    ids = []
    for rule in policy.get("include") or []:
        if not isinstance(rule, dict) or list(rule) != ["service_token"]:
            return None
        ids.append((rule["service_token"] or {}).get("token_id"))
    return ids


def policy_body(name, token_ids):
    return {
        "name": name,
        "decision": DECISION,
        "include": [{"service_token": {"token_id": token_id}} for token_id in token_ids],
    }


def policy_matches(policy, name, token_ids):
    ids = token_ids_of(policy)
    return (
        policy.get("name") == name
        and policy.get("decision") == DECISION
        and ids is not None
        and sorted(ids) == sorted(token_ids)
        and not policy.get("exclude")
        and not policy.get("require")
    )


def app_body(params):
    return {
        "type": "self_hosted",
        "name": params["name"],
        "domain": params["domain"],
        "session_duration": params["session_duration"],
    }


def app_matches(app, params):
    return (
        app.get("type") == "self_hosted"
        and app.get("name") == params["name"]
        and app.get("domain") == params["domain"]
        and same_duration(app.get("session_duration") or "24h", params["session_duration"])
    )


def _diff_view(app, policies, names):
    if not app:
        return {}
    view = {k: app.get(k) for k in ("name", "domain", "session_duration") if app.get(k) is not None}
    view["policies"] = [
        {
            "name": p.get("name"),
            "decision": p.get("decision"),
            "service_tokens": sorted(names.get(i, i) for i in (token_ids_of(p) or []) if i),
        }
        for p in policies or []
    ]
    return view


class AccessApps:
    """The Access application and policy calls of one scope."""

    def __init__(self, client, account_id=None, zone_id=None):
        self.client = client
        self.account_id = account_id
        self.prefix = scope_prefix(account_id, zone_id)
        self.where = scope_text(account_id, zone_id)
        self.apps = self.prefix + "/access/apps"
        self.reusable = "/accounts/%s/access/policies" % quote_segment(account_id) if account_id else None

    def app_path(self, app_id, *rest):
        return "/".join([self.apps, quote_segment(app_id)] + [quote_segment(r) for r in rest])

    def service_tokens(self):
        return self.client.list_all(self.prefix + "/access/service_tokens")

    def find_app(self, name):
        return one_by_name(self.client.list_all(self.apps), name, "Access applications", self.where)

    def app_policies(self, app_id):
        return self.client.list_all(self.app_path(app_id, "policies"))

    def find_reusable(self, name):
        return one_by_name(self.client.list_all(self.reusable), name, "reusable Access policies", self.where)


class Runner:
    def __init__(self, module, client):
        self.module = module
        self.p = module.params
        self.api = AccessApps(client, self.p["account_id"], self.p["zone_id"])
        self.client = client
        self.check = module.check_mode
        self.changed = False
        self.policy_name = self.p["policy_name"] or "%s service auth" % self.p["name"]

    def write(self, method, path, body=None):
        """A writing call (never in check mode); marks the run changed."""
        self.changed = True
        if self.check:
            return None
        return self.client.request(method, path, body=body)

    # -- present --------------------------------------------------------------------------------------

    def present(self):
        tokens = self.api.service_tokens()
        names = {t.get("id"): t.get("name") for t in tokens}
        token_ids = resolve_tokens(tokens, self.p["service_tokens"], self.api.where)
        app = self.api.find_app(self.p["name"])
        before_policies = self._attached(app)
        before = _diff_view(app, before_policies, names)
        if self.api.account_id:
            app, policies = self._present_account(app, token_ids)
        else:
            app, policies = self._present_zone(app, token_ids)
        after = _diff_view(app, policies, names)
        return app, policies, before, after, token_ids

    def _attached(self, app):
        if not app:
            return []
        if self.api.account_id:
            return list(app.get("policies") or [])
        return self.api.app_policies(app["id"])

    def _present_account(self, app, token_ids):
        wanted = policy_body(self.policy_name, token_ids)
        policy = self.api.find_reusable(self.policy_name)
        if policy is None:
            policy = self.write("POST", self.api.reusable, wanted) or dict(wanted, id=None)
        elif not policy_matches(policy, self.policy_name, token_ids):
            path = "%s/%s" % (self.api.reusable, quote_segment(policy["id"]))
            policy = self.write("PUT", path, wanted) or dict(policy, **wanted)
        body = dict(app_body(self.p), policies=[{"id": policy["id"], "precedence": 1}])
        if app is None:
            app = self.write("POST", self.api.apps, body) or dict(body, policies=[dict(policy, precedence=1)])
        else:
            linked = [x.get("id") for x in app.get("policies") or []]
            if not app_matches(app, self.p) or linked != [policy["id"]]:
                app = self.write("PUT", self.api.app_path(app["id"]), body) or dict(
                    app, **dict(body, policies=[dict(policy, precedence=1)])
                )
        if self.changed and not self.check:
            app = self.client.request("GET", self.api.app_path(app["id"]))
        # what the application links (re-read above after a change); in check mode, the prediction
        policies = [dict(policy, precedence=1) if x.get("id") == policy["id"] else x for x in app.get("policies") or []]
        return app, policies

    def _present_zone(self, app, token_ids):
        wanted = policy_body(self.policy_name, token_ids)
        body = app_body(self.p)
        if app is None:
            app = self.write("POST", self.api.apps, body) or dict(body)
            existing = []
        else:
            if not app_matches(app, self.p):
                app = self.write("PUT", self.api.app_path(app["id"]), body) or dict(app, **body)
            existing = self.api.app_policies(app["id"])
        ours = [x for x in existing if x.get("name") == self.policy_name]
        others = [x for x in existing if x.get("name") != self.policy_name]
        for extra in ours[1:] + others:
            self.write("DELETE", self.api.app_path(app["id"], "policies", extra["id"]))
        if not ours:
            policy = dict(wanted, precedence=1)
            if app.get("id"):
                policy = self.write("POST", self.api.app_path(app["id"], "policies"), policy) or policy
        elif not policy_matches(ours[0], self.policy_name, token_ids) or ours[0].get("precedence") != 1:
            path = self.api.app_path(app["id"], "policies", ours[0]["id"])
            policy = self.write("PUT", path, dict(wanted, precedence=1)) or dict(ours[0], precedence=1, **wanted)
        else:
            policy = ours[0]
        if self.changed and not self.check:
            app = self.client.request("GET", self.api.app_path(app["id"]))
        return app, [policy]

    # -- absent ---------------------------------------------------------------------------------------

    def absent(self):
        app = self.api.find_app(self.p["name"])
        before = _diff_view(app, self._attached(app), {})
        if app:
            self.write("DELETE", self.api.app_path(app["id"]))
        if self.api.account_id:
            policy = self.api.find_reusable(self.policy_name)
            if policy:
                linked_here = bool(app) and policy["id"] in [x.get("id") for x in app.get("policies") or []]
                # app_count counts the applications that link the policy; this one is gone (or about to be).
                others = int(policy.get("app_count") or 0) - (1 if linked_here else 0)
                if not self.check:
                    policy = self.client.request("GET", "%s/%s" % (self.api.reusable, quote_segment(policy["id"])))
                    others = int((policy or {}).get("app_count") or 0)
                if others > 0:
                    self.module.warn(
                        "kept the reusable Access policy %r (id %s): %d other application(s) still use it"
                        % (self.policy_name, policy["id"], others)
                    )
                else:
                    self.write("DELETE", "%s/%s" % (self.api.reusable, quote_segment(policy["id"])))
        return before


def run(module, client):
    runner = Runner(module, client)
    result = {"changed": False, "application": {}, "policies": []}
    if module.params["state"] == "absent":
        before, after = runner.absent(), {}
    else:
        app, policies, before, after, token_ids = runner.present()
        result.update(application=app or {}, policies=policies, service_token_ids=token_ids)
    result["changed"] = runner.changed
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def main():
    argument_spec = cloudflare_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        domain={"type": "str"},
        account_id={"type": "str"},
        zone_id={"type": "str"},
        service_tokens={"type": "list", "elements": "str", "no_log": False},
        session_duration={"type": "str", "default": "24h"},
        policy_name={"type": "str"},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("account_id", "zone_id")],
        required_one_of=[("account_id", "zone_id")],
    )
    run_module(module, run, validate_params, "Access application %r: " % module.params["name"])


if __name__ == "__main__":
    main()
