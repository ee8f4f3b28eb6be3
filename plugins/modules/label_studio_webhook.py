#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: label_studio_webhook
short_description: Manage a Label Studio project webhook, idempotent by its URL
version_added: 0.1.0
description:
  - Makes sure the project O(project) has a webhook to O(webhook_url) (O(state=present)) with the given actions,
    headers, payload setting and activity, or has none to that URL (O(state=absent)).
  - Webhooks are matched by project and exact URL, so the webhook C(<ML backend URL>/webhook) that Label Studio adds
    by itself when an ML backend is connected is left alone unless O(webhook_url) names it.
  - An empty O(actions) sends every action (C(send_for_all_actions=true)); otherwise only the listed ones. Every
    update sends the full action list (Label Studio empties the list on an update without it).
  - Organization-only actions (C(PROJECT_CREATED), C(PROJECT_DELETED)) cannot be on a project webhook; the module
    rejects them before sending anything. Other action names are checked against Label Studio's own list
    (C(GET /api/webhooks/info/)).
options:
  project:
    description:
      - The project, by id or by exact title (which must be unique).
    type: str
    required: true
  webhook_url:
    description:
      - Where Label Studio sends the events (C(POST)), as Label Studio must reach it.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the webhook; V(absent) deletes every webhook of the project to this URL.
    type: str
    choices: [present, absent]
    default: present
  actions:
    description:
      - The actions that trigger the webhook, for example C(TASKS_CREATED), C(ANNOTATION_CREATED). Empty means all.
    type: list
    elements: str
    default: []
  headers:
    description:
      - HTTP headers Label Studio adds to each request (at most 10; names of letters, digits, C(-) and C(_)).
      - Compared exactly; headers not listed here are removed. Values are not logged.
    type: dict
    default: {}
  send_payload:
    description:
      - Whether the request carries the event's objects (task, annotation, project) or only the action.
    type: bool
    default: true
  is_active:
    description:
      - Whether the webhook fires.
    type: bool
    default: true
extends_documentation_fragment:
  - oceanid.fleet.label_studio
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - A project that does not exist yet (created by an earlier task in the same check run) gives a warning and
        C(changed=true).
  diff_mode:
    support: full
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Label Studio refuses webhook URLs on loopback and private addresses unless it runs with
    C(SSRF_PROTECTION_ENABLED=false); it does not retry a failed delivery.
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Send new tasks to the ingest sink
  oceanid.fleet.label_studio_webhook:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    project: NER_Data
    webhook_url: http://sink.apps.svc:8000/ingest
    actions: [TASKS_CREATED]
    headers:
      X-Sink-Token: "{{ sink_token }}"

- name: Every event, without payload
  oceanid.fleet.label_studio_webhook:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    project: 3
    webhook_url: http://audit.example.com/label-studio
    send_payload: false

- name: Remove it
  oceanid.fleet.label_studio_webhook:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    project: 3
    webhook_url: http://audit.example.com/label-studio
    state: absent
"""

RETURN = r"""
webhook:
  description:
    - The webhook after the module's work (in check mode, as it would be, without RV(webhook.id) when it would be
      created). Empty after O(state=absent). Header values are hidden.
  returned: always
  type: dict
  contains:
    id:
      description: The webhook's id.
      type: int
      returned: when it exists
    url:
      description: Its URL.
      type: str
      returned: success
    actions:
      description: The actions, sorted; empty when it fires for all.
      type: list
      elements: str
      returned: success
    send_for_all_actions:
      description: Whether it fires for every action.
      type: bool
      returned: success
    send_payload:
      description: Whether the requests carry the payload.
      type: bool
      returned: success
    headers:
      description: Header names, with the values hidden.
      type: dict
      returned: success
    is_active:
      description: Whether it fires.
      type: bool
      returned: success
    project:
      description: The project id.
      type: int
      returned: success
project_id:
  description: The project's id (null in check mode when the project does not exist yet).
  returned: always
  type: int
deleted:
  description: Ids of the webhooks deleted (in check mode, that would be deleted).
  returned: always
  type: list
  elements: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio import label_studio_argument_spec
from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio_module import ProjectObjectRunner

# Organization-level actions Label Studio 1.23 refuses on a project webhook.
ORGANIZATION_ONLY_ACTIONS = ("PROJECT_CREATED", "PROJECT_DELETED")
_HIDDEN = "********"


def _state(webhook):
    """The compared fields of a webhook as Label Studio returns it (or as the module wants it)."""
    if not webhook:
        return {}
    send_all = bool(webhook.get("send_for_all_actions"))
    return {
        "url": webhook.get("url"),
        "send_for_all_actions": send_all,
        "actions": [] if send_all else sorted(webhook.get("actions") or []),
        "headers": dict(webhook.get("headers") or {}),
        "send_payload": bool(webhook.get("send_payload")),
        "is_active": bool(webhook.get("is_active")),
    }


def _hidden(state, project_id=None, webhook_id=None, changed_from=None):
    """The state with header values hidden; with ``changed_from``, a header whose value differs says so."""
    other = (changed_from or {}).get("headers") or {}
    headers = {
        name: _HIDDEN + (" (changed)" if changed_from is not None and name in other and other[name] != value else "")
        for name, value in (state.get("headers") or {}).items()
    }
    out = dict(state, headers=headers)
    if project_id is not None:
        out["project"] = project_id
    if webhook_id is not None:
        out["id"] = webhook_id
    return out


class WebhookRunner(ProjectObjectRunner):
    kind = "webhook"
    url_option = "webhook_url"
    result_key = "webhook"

    def __init__(self, module):
        super().__init__(module)
        self.actions = sorted(set(self.params["actions"]))
        headers = {}
        for name, value in (self.params["headers"] or {}).items():
            if not isinstance(value, str):
                self.fail("header %s must have a string value" % name)
            headers[str(name)] = value
        self.wanted = {
            "url": self.url,
            "send_for_all_actions": not self.actions,
            "actions": self.actions,
            "headers": headers,
            "send_payload": self.params["send_payload"],
            "is_active": self.params["is_active"],
        }

    def check_input(self):
        if self.params["state"] != "present":
            return
        self._refuse_org_only([a for a in self.actions if a in ORGANIZATION_ONLY_ACTIONS])
        known = self.client.webhook_actions()
        if isinstance(known, dict) and known:
            unknown = [a for a in self.actions if a not in known]
            if unknown:
                self.fail(
                    "unknown action(s) %s; Label Studio at %s knows %s"
                    % (", ".join(unknown), self.client.url, ", ".join(sorted(known)))
                )
            self._refuse_org_only([a for a in self.actions if (known[a] or {}).get("organization-only")])

    def _refuse_org_only(self, actions):
        if actions:
            self.fail(
                "actions %s are organization-only; Label Studio refuses them on a project webhook" % ", ".join(actions)
            )

    def matches(self, item):
        return item.get("project") == self.project_id and item.get("url") == self.url

    def list_objects(self):
        return self.client.list_webhooks(self.project_id)

    def delete_object(self, item):
        self.client.delete_webhook(item["id"])

    def shown(self, item):
        return _hidden(_state(item))

    def planned(self):
        return _hidden(self.wanted)

    def present(self, current):
        before = _state(current)
        body = dict(self.wanted, project=self.project_id)
        after = current
        if current is None or before != self.wanted:
            self.result["changed"] = True
            if not self.module.check_mode:
                # The full object, actions included (an update without them empties the list).
                if current is None:
                    after = self.client.create_webhook(body)
                else:
                    after = self.client.update_webhook(current["id"], body)
        after_state = self.wanted if self.module.check_mode else _state(after)
        self.result["webhook"] = _hidden(after_state, self.project_id, (after or {}).get("id"))
        self.result["diff"] = {
            "before": _hidden(before, changed_from=after_state) if current else {},
            "after": _hidden(after_state, changed_from=before),
        }


def main():
    argument_spec = label_studio_argument_spec()
    argument_spec.update(
        project={"type": "str", "required": True},
        webhook_url={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        actions={"type": "list", "elements": "str", "default": []},
        headers={"type": "dict", "default": {}, "no_log": True},
        send_payload={"type": "bool", "default": True},
        is_active={"type": "bool", "default": True},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    module.exit_json(**WebhookRunner(module).run())


if __name__ == "__main__":
    main()
