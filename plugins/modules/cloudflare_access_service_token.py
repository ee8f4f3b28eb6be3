#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: cloudflare_access_service_token
short_description: Manage a Cloudflare Access service token by name, returning its secret only when one is issued
version_added: 0.1.0
description:
  - Makes sure the Cloudflare Access service token named O(name) exists in an account (O(account_id)) or a zone
    (O(zone_id)), is rotated, has its expiry extended, or is deleted.
  - Cloudflare shows a token's client secret only in the answer that creates it or rotates it; it can never be read
    back. This module returns it (RV(client_secret)) and optionally writes it to O(secret_file) in exactly those
    two cases. Every other run returns an empty RV(client_secret) and RV(secret_returned=false).
  - The result holds the client secret, so set C(no_log) to C(true) on the task and keep the registered result
    out of debug output. The module cannot hide a value it returns.
  - Tokens are identified by their exact name; two tokens with the same name in the same scope fail the task,
    naming both ids.
options:
  name:
    description:
      - The token's name, unique within the account or zone.
    type: str
    required: true
  account_id:
    description:
      - The Cloudflare account (32 hex characters) that holds the token. Give this or O(zone_id).
    type: str
  zone_id:
    description:
      - The zone that holds the token, for a zone-scoped token. Give this or O(account_id).
      - Cloudflare's rotate and refresh calls exist at account level only; for a zone-scoped token this module
        rotates by raising C(client_secret_version) and refreshes by setting the duration again (which restarts
        the expiry from now), the documented equivalents.
    type: str
  state:
    description:
      - V(present) creates the token when it is missing (returning its secret) and sets O(duration) when it differs
        (no new secret); otherwise it changes nothing and returns no secret.
      - V(rotated) issues a new client secret for the existing token (same client id) and returns it; always
        C(changed). A missing token is created instead.
      - V(refreshed) extends the token's expiry (Cloudflare adds one year); always C(changed). A missing token is
        created instead.
      - V(absent) deletes the token.
    type: str
    choices: [present, absent, rotated, refreshed]
    default: present
  duration:
    description:
      - How long the token is valid, as a Go duration (C(8760h), C(2h45m); units C(ns), C(us), C(ms), C(s), C(m),
        C(h); days are not a unit) or V(forever).
      - When not set, a new token gets Cloudflare's default (C(8760h)) and an existing token's duration is left
        alone. Cloudflare restarts the expiry from the time of the update when the duration is changed.
    type: str
  previous_secret_expires_at:
    description:
      - With O(state=rotated), how long the previous secret keeps working, as an
        RFC 3339 time (C(2026-12-31T12:00:00Z)). Not set, the previous secret stops working at once.
    type: str
  secret_file:
    description:
      - A file to write the client id and the new client secret to, atomically with mode C(0600), when (and only
        when) a secret was obtained (create or rotate, not in check mode). Otherwise the file is left untouched.
      - Its directory must exist. The content is chosen by O(secret_file_format).
    type: path
  secret_file_format:
    description:
      - V(env) writes C(CF_ACCESS_CLIENT_ID=...) and C(CF_ACCESS_CLIENT_SECRET=...) lines (an environment file);
        V(json) writes a JSON object with the keys C(client_id) and C(client_secret); V(secret) writes the secret alone.
    type: str
    choices: [env, json, secret]
    default: env
extends_documentation_fragment:
  - oceanid.fleet.cloudflare
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the tokens and predicts the change; it sends no writing request, returns no secret and
        writes no O(secret_file).
  diff_mode:
    support: full
    details:
      - The diff shows the token's name, duration, expiry, client id and secret version, never the secret.
  idempotent:
    description:
      - With O(state=present) or O(state=absent), a second run with the same arguments changes nothing.
        O(state=rotated) and O(state=refreshed) change the token on every run, by design.
    support: partial
notes:
  - Set C(no_log) to C(true) on every task that uses this module, because RV(client_secret) is in the result when a
    token is created or rotated.
  - An API token needs the C(Access - Service Tokens Write) permission (C(Read) for check mode).
seealso:
  - module: oceanid.fleet.cloudflare_access_application
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: The adapter's service token exists; its secret is written to a 0600 file when it is issued
  oceanid.fleet.cloudflare_access_service_token:
    name: ls-triton-adapter
    account_id: "{{ fleet_cloudflare_account_id }}"
    api_token: "{{ fleet_cloudflare_api_token }}"
    duration: 8760h
    secret_file: /root/.cloudflare/ls-triton-adapter.env
  delegate_to: localhost
  run_once: true
  no_log: true
  register: adapter_token

- name: Rotate the adapter's secret (the previous one keeps working for an hour)
  oceanid.fleet.cloudflare_access_service_token:
    name: ls-triton-adapter
    account_id: "{{ fleet_cloudflare_account_id }}"
    state: rotated
    previous_secret_expires_at: "{{ '%Y-%m-%dT%H:%M:%SZ' | strftime(now(utc=true).timestamp() + 3600, utc=true) }}"
  environment:
    CLOUDFLARE_API_TOKEN: "{{ fleet_cloudflare_api_token }}"
  no_log: true
  register: adapter_token

- name: Delete it, with the global API key and e-mail
  oceanid.fleet.cloudflare_access_service_token:
    name: ls-triton-adapter
    zone_id: "{{ fleet_cloudflare_zone_id }}"
    api_key: "{{ cloudflare_global_key }}"
    api_email: ops@example.com
    state: absent
"""

RETURN = r"""
service_token:
  description:
    - The token as Cloudflare describes it (C(id), C(name), C(client_id), C(duration), C(expires_at), ...), without
      the secret. Empty after O(state=absent); predicted (no C(id) for a new token) in check mode.
  returned: always
  type: dict
  sample:
    id: 3f9c7a42-1b2d-4c8e-9f10-0a1b2c3d4e5f
    name: ls-triton-adapter
    client_id: 4f2a0c1e9b8d7a6f5e4d3c2b1a098765.access
    duration: 8760h
    expires_at: "2027-12-04T17:00:00Z"
client_id:
  description: The client id (the C(CF-Access-Client-Id) header value); empty when there is no token.
  returned: always
  type: str
  sample: 4f2a0c1e9b8d7a6f5e4d3c2b1a098765.access
client_secret:
  description:
    - The new client secret (the C(CF-Access-Client-Secret) header value), only when the token was created or rotated
      by this run; otherwise empty. Callers must set C(no_log) to C(true).
  returned: always
  type: str
  sample: ""
secret_returned:
  description: Whether RV(client_secret) holds a newly issued secret.
  returned: always
  type: bool
  sample: false
secret_file_written:
  description: Whether O(secret_file) was written by this run.
  returned: always
  type: bool
  sample: false
"""

import json
import os
import re
import tempfile

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

# Fields shown in the diff and compared; never client_secret.
_DIFF_FIELDS = ("name", "client_id", "duration", "expires_at", "client_secret_version")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _public(token):
    """The token without its secret."""
    return {k: v for k, v in (token or {}).items() if k != "client_secret"}


def _diff_view(token):
    if not token:
        return {}
    return {k: token.get(k) for k in _DIFF_FIELDS if token.get(k) is not None}


def validate_params(params):
    """Error texts for arguments Cloudflare would refuse or this module cannot act on (empty = fine)."""
    errors = []
    if not (params.get("name") or "").strip():
        errors.append("name must be a non-empty string")
    if bool(params.get("account_id")) == bool(params.get("zone_id")):
        errors.append("give exactly one of account_id and zone_id (the token's account, or its zone)")
    duration = params.get("duration")
    if duration is not None and duration != "forever" and go_duration_ns(duration) is None:
        errors.append(
            "duration %r is not a Go duration such as 8760h or 2h45m (units ns, us, ms, s, m, h; days are not a "
            "unit) nor 'forever'" % duration
        )
    expires = params.get("previous_secret_expires_at")
    if expires is not None:
        if params.get("state") != "rotated":
            errors.append("previous_secret_expires_at applies to state=rotated only, not state=%s" % params["state"])
        elif not _RFC3339.match(expires):
            errors.append(
                "previous_secret_expires_at %r is not an RFC 3339 time such as 2026-12-31T12:00:00Z" % expires
            )
    return errors


def secret_file_content(fmt, client_id, client_secret):
    if fmt == "json":
        return json.dumps({"client_id": client_id, "client_secret": client_secret}, indent=2) + "\n"
    if fmt == "secret":
        return client_secret + "\n"
    return "CF_ACCESS_CLIENT_ID=%s\nCF_ACCESS_CLIENT_SECRET=%s\n" % (client_id, client_secret)


def write_secret_file(path, content):
    """Write ``content`` to ``path`` atomically (temporary file in the same directory, then rename), mode 0600."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ServiceTokens:
    """The service-token calls of one scope."""

    def __init__(self, client, account_id=None, zone_id=None):
        self.client = client
        self.account_id = account_id
        self.prefix = scope_prefix(account_id, zone_id)
        self.where = scope_text(account_id, zone_id)
        self.base = self.prefix + "/access/service_tokens"

    def find(self, name):
        return one_by_name(self.client.list_all(self.base), name, "Access service tokens", self.where)

    def create(self, name, duration=None):
        body = {"name": name}
        if duration is not None:
            body["duration"] = duration
        return self.client.request("POST", self.base, body=body)

    def update(self, token_id, body):
        return self.client.request("PUT", "%s/%s" % (self.base, quote_segment(token_id)), body=body)

    def delete(self, token_id):
        return self.client.request("DELETE", "%s/%s" % (self.base, quote_segment(token_id)))

    def rotate(self, token, previous_expires_at=None):
        if self.account_id:
            body = {}
            if previous_expires_at:
                body["previous_client_secret_expires_at"] = previous_expires_at
            return self.client.request("POST", "%s/%s/rotate" % (self.base, quote_segment(token["id"])), body=body)
        # Zone scope has no rotate call: raising client_secret_version is the documented equivalent.
        body = {"client_secret_version": int(token.get("client_secret_version") or 1) + 1}
        if previous_expires_at:
            body["previous_client_secret_expires_at"] = previous_expires_at
        return self.update(token["id"], body)

    def refresh(self, token):
        if self.account_id:
            return self.client.request("POST", "%s/%s/refresh" % (self.base, quote_segment(token["id"])))
        # Zone scope has no refresh call: setting the duration again restarts the expiry from now.
        return self.update(token["id"], {"duration": token.get("duration") or "8760h"})


def run(module, client):
    p = module.params
    tokens = ServiceTokens(client, p["account_id"], p["zone_id"])
    name, state, duration = p["name"], p["state"], p["duration"]
    result = {
        "changed": False,
        "service_token": {},
        "client_id": "",
        "client_secret": "",
        "secret_returned": False,
        "secret_file_written": False,
    }
    current = tokens.find(name)
    before = _diff_view(current)
    after = current
    secret = ""

    if state == "absent":
        if current:
            result["changed"] = True
            if not module.check_mode:
                tokens.delete(current["id"])
        after = None
    elif current is None:
        result["changed"] = True
        if module.check_mode:
            after = {"name": name, "duration": duration or "8760h"}
        else:
            after = tokens.create(name, duration)
            secret = (after or {}).get("client_secret") or ""
            if not secret:
                module.fail_json(
                    msg="Cloudflare created the service token %r in %s (id %s) but its answer holds no client_secret; "
                    "rotate it (state=rotated) to obtain one" % (name, tokens.where, (after or {}).get("id")),
                    service_token=_public(after),
                )
    elif state == "rotated":
        result["changed"] = True
        if module.check_mode:
            after = dict(current)
            after["client_secret_version"] = int(current.get("client_secret_version") or 1) + 1
        else:
            after = tokens.rotate(current, p["previous_secret_expires_at"])
            secret = (after or {}).get("client_secret") or ""
            if not secret:
                module.fail_json(
                    msg="Cloudflare rotated the service token %r in %s (id %s) but its answer holds no client_secret"
                    % (name, tokens.where, current["id"]),
                    service_token=_public(after),
                )
    elif state == "refreshed":
        result["changed"] = True
        if not module.check_mode:
            after = tokens.refresh(current)
    else:  # present, exists
        if duration is not None and not same_duration(duration, current.get("duration")):
            result["changed"] = True
            after = dict(current, duration=duration)
            if not module.check_mode:
                after = tokens.update(current["id"], {"duration": duration})

    public = _public(after) if after else {}
    result["service_token"] = public
    result["client_id"] = public.get("client_id") or ""
    if secret:
        result["client_secret"] = secret
        result["secret_returned"] = True
        if p["secret_file"]:
            try:
                write_secret_file(
                    p["secret_file"], secret_file_content(p["secret_file_format"], result["client_id"], secret)
                )
            except OSError as exc:
                # The secret exists only in this result now: hand it back so the play can still store it.
                result["msg"] = (
                    "the service token %r got a new secret but secret_file %s could not be written: %s; the secret "
                    "is in this result only" % (name, p["secret_file"], exc.strerror or exc)
                )
                module.fail_json(**result)
            result["secret_file_written"] = True
    if module._diff:
        result["diff"] = {"before": before, "after": _diff_view(after)}
    return result


def main():
    argument_spec = cloudflare_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        account_id={"type": "str"},
        zone_id={"type": "str"},
        state={"type": "str", "default": "present", "choices": ["present", "absent", "rotated", "refreshed"]},
        duration={"type": "str"},
        previous_secret_expires_at={"type": "str", "no_log": False},
        secret_file={"type": "path"},
        secret_file_format={"type": "str", "default": "env", "choices": ["env", "json", "secret"]},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("account_id", "zone_id")],
        required_one_of=[("account_id", "zone_id")],
    )
    run_module(module, run, validate_params, "service token %r: " % module.params["name"])


if __name__ == "__main__":
    main()
