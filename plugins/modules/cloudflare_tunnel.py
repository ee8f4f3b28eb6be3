#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: cloudflare_tunnel
short_description: Manage a Cloudflare Tunnel by name, returning its id, connector token and CNAME target
version_added: 0.1.0
description:
  - Makes sure the Cloudflare Tunnel (C(cfd_tunnel)) named O(name) exists in account O(account_id), or is deleted.
  - A missing tunnel is created with a new random tunnel secret (32 bytes); the module returns the tunnel's id,
    the connector token (RV(tunnel_token), what C(cloudflared tunnel run --token) and the
    C(oceanid.fleet.cloudflared_node) role take) and the target for the hostnames' CNAME records
    (RV(cname_target), C(<id>.cfargotunnel.com)).
  - With O(config_src=cloudflare) (a remotely managed tunnel) and O(ingress) given, the tunnel's configuration is
    put through the API, only when it differs from the current one. The rules are checked first with the same
    checks as C(cloudflared tunnel ingress validate) (each connector refuses a pushed configuration that fails
    them); a bad rule fails the task, naming the rule, before any request is sent.
  - With O(config_src=local) (the default) the ingress rules live in the node's C(config.yaml) (see the
    C(oceanid.fleet.cloudflared_node) role); this module only creates the tunnel and returns its token.
  - The result holds the tunnel token, a secret that lets anyone run a connector for the tunnel. Set C(no_log) to
    C(true) on every task that uses this module.
  - State O(state=absent) first cleans up the tunnel's connections (Cloudflare refuses to delete a tunnel with
    active connections), then deletes the tunnel.
options:
  name:
    description:
      - The tunnel's name, unique among the account's tunnels that are not deleted. Not a UUID (cloudflared reads
        a UUID as a tunnel id).
    type: str
    required: true
  account_id:
    description:
      - The Cloudflare account that holds the tunnel.
    type: str
    required: true
  state:
    description:
      - V(present) creates the tunnel when it is missing and puts its configuration when O(ingress) is given and
        differs; V(absent) deletes it after cleaning up its connections.
    type: str
    choices: [present, absent]
    default: present
  config_src:
    description:
      - Where the tunnel's ingress rules live. V(local) in each connector's configuration file; V(cloudflare) in
        Cloudflare (a remotely managed tunnel, configured with O(ingress) and O(origin_request)).
      - Only used when the tunnel is created. Cloudflare's API cannot switch an existing tunnel, so a tunnel that
        exists with the other value fails the task (delete it, or use its value).
    type: str
    choices: [local, cloudflare]
    default: local
  ingress:
    description:
      - The ingress rules of a remotely managed tunnel (O(config_src=cloudflare) only), as cloudflared reads them
        from a remote configuration. Each rule has C(service) and optionally C(hostname), C(path) (a Go regular
        expression) and C(originRequest); the last rule has neither C(hostname) nor C(path), typically one
        with only C(service), set to C(http_status:404).
      - Durations inside C(originRequest) are integer seconds here (JSON), not Go duration strings.
      - Not given, the tunnel's configuration is left as it is.
    type: list
    elements: dict
  origin_request:
    description:
      - The configuration's global C(originRequest) (defaults for every rule), O(config_src=cloudflare) only;
        durations in integer seconds.
      - Not given, the current global C(originRequest) is kept.
    type: dict
extends_documentation_fragment:
  - oceanid.fleet.cloudflare
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the tunnel, its token and its configuration and predicts the change; it sends no writing
        request. A tunnel that would be created has no id or token yet, so RV(tunnel_id), RV(tunnel_token) and
        RV(cname_target) are empty then.
  diff_mode:
    support: full
    details:
      - The diff shows the tunnel's name and C(config_src) and, for a remotely managed tunnel, its C(ingress) and
        C(originRequest); never the token or the secret.
  idempotent:
    description:
      - A second run with the same arguments changes nothing.
    support: full
notes:
  - Set C(no_log) to C(true) on every task that uses this module, because RV(tunnel_token) is in the result.
  - An API token needs the C(Cloudflare Tunnel Write) permission (C(Read) for check mode).
  - The DNS record for a hostname (a proxied CNAME to RV(cname_target)) is not made here; use
    C(community.general.cloudflare_dns).
seealso:
  - module: oceanid.fleet.cloudflare_access_application
  - module: community.general.cloudflare_dns
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: The GPU host's tunnel exists (its ingress rules are in the node's config.yaml)
  oceanid.fleet.cloudflare_tunnel:
    name: calypso
    account_id: "{{ fleet_cloudflare_account_id }}"
    api_token: "{{ fleet_cloudflare_api_token }}"
  delegate_to: localhost
  run_once: true
  no_log: true
  register: calypso_tunnel

- name: A remotely managed tunnel routing gpu.<base> to Triton, everything else 404
  oceanid.fleet.cloudflare_tunnel:
    name: calypso-remote
    account_id: "{{ fleet_cloudflare_account_id }}"
    config_src: cloudflare
    ingress:
      - hostname: gpu.oceanid.example
        service: http://localhost:8000
        originRequest:
          connectTimeout: 30
      - service: http_status:404
  environment:
    CLOUDFLARE_API_TOKEN: "{{ fleet_cloudflare_api_token }}"
  no_log: true
  register: calypso_tunnel

- name: Delete a tunnel (its connections are cleaned up first)
  oceanid.fleet.cloudflare_tunnel:
    name: old-gpu-host
    account_id: "{{ fleet_cloudflare_account_id }}"
    state: absent
"""

RETURN = r"""
tunnel:
  description:
    - The tunnel as Cloudflare describes it (C(id), C(name), C(status), C(config_src), C(created_at), ...), without
      any token or secret. Empty after O(state=absent); predicted (no C(id)) in check mode for a new tunnel.
  returned: always
  type: dict
  sample:
    id: f70ff985-a4ef-4643-bbbc-4a0ed4fc8415
    name: calypso
    status: inactive
    config_src: local
tunnel_id:
  description: The tunnel's id; empty when there is no tunnel (yet).
  returned: always
  type: str
  sample: f70ff985-a4ef-4643-bbbc-4a0ed4fc8415
tunnel_token:
  description:
    - The connector token (base64 of a JSON object with the account C(a), the tunnel id C(t) and the secret C(s)), as C(GET .../token)
      returns it; empty when there is no tunnel (yet). A secret; callers must set C(no_log) to C(true).
  returned: always
  type: str
  sample: ""
cname_target:
  description: The target of a hostname's CNAME record, C(<tunnel id>.cfargotunnel.com); empty without a tunnel.
  returned: always
  type: str
  sample: f70ff985-a4ef-4643-bbbc-4a0ed4fc8415.cfargotunnel.com
configuration:
  description:
    - The remotely managed configuration after this run (C(ingress), C(originRequest), C(warp-routing)) for
      O(config_src=cloudflare); empty otherwise.
  returned: always
  type: dict
connections_cleaned:
  description: Whether O(state=absent) cleaned up connections before deleting the tunnel.
  returned: always
  type: bool
  sample: false
"""

import base64
import os
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflare import (
    cloudflare_argument_spec,
    one_by_name,
    quote_segment,
    run_module,
)
from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_credentials import (
    CredentialsError,
    parse_tunnel_credentials,
)
from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_ingress import ingress_errors

CNAME_SUFFIX = ".cfargotunnel.com"
SECRET_BYTES = 32
# Fields of a tunnel (or a create answer) that are secrets: never returned or shown in a diff.
_SECRET_FIELDS = ("token", "tunnel_secret", "credentials_file")


def _public(tunnel):
    return {k: v for k, v in (tunnel or {}).items() if k not in _SECRET_FIELDS}


def _prune(value):
    """``value`` without empty entries (None, '', {}, []), recursively: how rules compare with what the API returns,
    which may spell an unset field as an empty one."""
    if isinstance(value, dict):
        pruned = {}
        for key, item in value.items():
            item = _prune(item)
            if item not in (None, "", {}, []):
                pruned[key] = item
        return pruned
    if isinstance(value, list):
        return [_prune(item) for item in value]
    return value


def _config_src(tunnel):
    """The tunnel's config_src (2026 field), from the deprecated remote_config bool when that is all there is."""
    if tunnel.get("config_src") in ("local", "cloudflare"):
        return tunnel["config_src"]
    if isinstance(tunnel.get("remote_config"), bool):
        return "cloudflare" if tunnel["remote_config"] else "local"
    return None


def validate_params(params):
    """Error texts for arguments that cannot work, found before any request (empty = fine)."""
    errors = []
    name = params.get("name") or ""
    if not name.strip():
        errors.append("name must be a non-empty string")
    else:
        try:
            uuid.UUID(name)
            errors.append("name %r looks like a UUID; cloudflared reads a UUID as a tunnel id: choose a name" % name)
        except ValueError:
            pass
    if not (params.get("account_id") or "").strip():
        errors.append("account_id must be a non-empty string")
    if params.get("state") == "absent":
        return errors
    managed = params.get("ingress") is not None or params.get("origin_request") is not None
    if managed and params.get("config_src") != "cloudflare":
        errors.append(
            "ingress and origin_request apply to config_src=cloudflare (a remotely managed tunnel) only; with "
            "config_src=local the connector's config.yaml holds the ingress rules (role oceanid.fleet.cloudflared_node)"
        )
    elif params.get("origin_request") is not None and params.get("ingress") is None:
        errors.append("origin_request needs ingress: give the whole configuration (ingress and origin_request)")
    elif params.get("ingress") is not None:
        problems = ingress_errors(_desired_config(params, {}), source="remote")
        if problems:
            errors.append(
                "the ingress configuration of tunnel %r is invalid (cloudflared's ingress validate checks, rules "
                "numbered from 1): %s" % (name, "; ".join(problems))
            )
    return errors


def _desired_config(params, current):
    """The configuration to put: the given ingress (and originRequest, else the current one); warp-routing kept."""
    config = {"ingress": params["ingress"]}
    origin_request = params.get("origin_request")
    if origin_request is None:
        origin_request = current.get("originRequest")
    if origin_request:
        config["originRequest"] = origin_request
    if current.get("warp-routing"):
        config["warp-routing"] = current["warp-routing"]
    return config


def _config_view(config):
    return {key: config[key] for key in ("ingress", "originRequest") if config.get(key)}


class Tunnels:
    """The cfd_tunnel calls of one account."""

    def __init__(self, client, account_id):
        self.client = client
        self.account_id = account_id
        self.base = "/accounts/%s/cfd_tunnel" % quote_segment(account_id)

    def path(self, tunnel_id, *rest):
        return "/".join((self.base, quote_segment(tunnel_id)) + rest)

    def find(self, name):
        tunnels = self.client.list_all(self.base, query={"name": name, "is_deleted": False})
        live = [t for t in tunnels if isinstance(t, dict) and not t.get("deleted_at")]
        return one_by_name(live, name, "tunnels", "account %s" % self.account_id)

    def create(self, name, config_src):
        secret = base64.b64encode(os.urandom(SECRET_BYTES)).decode("ascii")
        return self.client.request(
            "POST", self.base, body={"name": name, "config_src": config_src, "tunnel_secret": secret}
        )

    def token(self, tunnel_id):
        return self.client.request("GET", self.path(tunnel_id, "token"))

    def configuration(self, tunnel_id):
        return self.client.request("GET", self.path(tunnel_id, "configurations")) or {}

    def put_configuration(self, tunnel_id, config):
        return self.client.request("PUT", self.path(tunnel_id, "configurations"), body={"config": config}) or {}

    def connections(self, tunnel_id):
        return self.client.request("GET", self.path(tunnel_id, "connections")) or []

    def clean_connections(self, tunnel_id):
        # The API's schema requires a (possibly empty) JSON body on these DELETE calls.
        return self.client.request("DELETE", self.path(tunnel_id, "connections"), body={})

    def delete(self, tunnel_id):
        return self.client.request("DELETE", self.path(tunnel_id), body={})


def _checked_token(module, token, tunnel_id, name):
    """The token, after checking that it decodes to this tunnel's credentials (fail_json, without it, if not)."""
    if not isinstance(token, str) or not token:
        module.fail_json(msg="Cloudflare returned no token for tunnel %r (id %s)" % (name, tunnel_id))
    try:
        parsed = parse_tunnel_credentials(token)
    except CredentialsError as exc:
        module.fail_json(
            msg="the token Cloudflare returned for tunnel %r (id %s) is not usable: %s" % (name, tunnel_id, exc)
        )
    if parsed["tunnel_id"] != str(tunnel_id).lower():
        module.fail_json(
            msg="the token Cloudflare returned for tunnel %r (id %s) is for tunnel %s"
            % (name, tunnel_id, parsed["tunnel_id"])
        )
    return token


def run(module, client):
    p = module.params
    tunnels = Tunnels(client, p["account_id"])
    name, state = p["name"], p["state"]
    result = {
        "changed": False,
        "tunnel": {},
        "tunnel_id": "",
        "tunnel_token": "",
        "cname_target": "",
        "configuration": {},
        "connections_cleaned": False,
    }
    before, after = {}, {}
    current = tunnels.find(name)
    if current:
        before = {"name": current.get("name"), "config_src": _config_src(current)}

    if state == "absent":
        if current:
            result["changed"] = True
            if not module.check_mode:
                if tunnels.connections(current["id"]):
                    tunnels.clean_connections(current["id"])
                    result["connections_cleaned"] = True
                tunnels.delete(current["id"])
        if module._diff:
            result["diff"] = {"before": before, "after": {}}
        return result

    tunnel = current
    if current is None:
        result["changed"] = True
        if module.check_mode:
            tunnel = {"name": name, "config_src": p["config_src"]}
        else:
            tunnel = tunnels.create(name, p["config_src"])
    elif _config_src(current) not in (None, p["config_src"]):
        module.fail_json(
            msg="tunnel %r (id %s) exists with config_src=%s, not %s; Cloudflare's API cannot switch it: use "
            "config_src=%s, or delete the tunnel (state=absent) and create it again"
            % (name, current["id"], _config_src(current), p["config_src"], _config_src(current))
        )
    after = {"name": name, "config_src": _config_src(tunnel) or p["config_src"]}
    tunnel_id = tunnel.get("id") or ""
    result["tunnel"] = _public(tunnel)
    result["tunnel_id"] = tunnel_id
    if tunnel_id:
        result["cname_target"] = tunnel_id + CNAME_SUFFIX
        result["tunnel_token"] = _checked_token(module, tunnels.token(tunnel_id), tunnel_id, name)

    if p["config_src"] == "cloudflare":
        current_config = {}
        if tunnel_id:
            current_config = tunnels.configuration(tunnel_id).get("config") or {}
        before.update(_config_view(current_config) if current else {})
        config = current_config
        if p["ingress"] is not None:
            desired = _desired_config(p, current_config)
            if _prune(desired) != _prune(current_config):
                result["changed"] = True
                config = desired
                if tunnel_id and not module.check_mode:
                    config = tunnels.put_configuration(tunnel_id, desired).get("config") or desired
        after.update(_config_view(config))
        result["configuration"] = config

    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def main():
    argument_spec = cloudflare_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        account_id={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        config_src={"type": "str", "default": "local", "choices": ["local", "cloudflare"]},
        ingress={"type": "list", "elements": "dict"},
        origin_request={"type": "dict"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, run, validate=validate_params, label="tunnel %r: " % module.params["name"])


if __name__ == "__main__":
    main()
