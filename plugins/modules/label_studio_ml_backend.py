#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: label_studio_ml_backend
short_description: Connect an ML backend to a Label Studio project, idempotent by its URL
version_added: 0.1.0
description:
  - Makes sure the project O(project) has an ML backend at O(backend_url) (O(state=present)) with the given title,
    description, interactivity, timeout and extra parameters, or has none at that URL (O(state=absent)).
  - Label Studio validates a backend when it is created or changed, by calling its C(/health) and C(/setup); when
    that fails (backend down, wrong answer, address blocked by Label Studio's SSRF protection, unknown host) the
    module fails quoting Label Studio's reason, and nothing is created or changed.
  - An update sends the full object (URL and project included), which Label Studio needs to validate it again.
  - With O(require_connected=true), the module also fails when Label Studio reports the backend as not connected
    (state other than C(CO)) after its work, for example an existing backend that went down.
  - Label Studio adds a project webhook C(<backend_url>/webhook) when it connects a backend and keeps it when the
    backend is deleted; with O(state=absent) the module deletes that webhook too.
options:
  project:
    description:
      - The project, by id or by exact title (which must be unique).
    type: str
    required: true
  backend_url:
    description:
      - The ML backend's base URL, as Label Studio must reach it (not necessarily as this host reaches it).
      - Backends are matched by this URL, ignoring a trailing slash.
    type: str
    required: true
  state:
    description:
      - V(present) connects the backend or updates it; V(absent) disconnects (deletes) every backend of the project
        with this URL.
    type: str
    choices: [present, absent]
    default: present
  title:
    description:
      - The backend's title in Label Studio.
    type: str
    default: default
  description:
    description:
      - The backend's description. Left alone when not given.
    type: str
  is_interactive:
    description:
      - Whether Label Studio uses the backend for interactive pre-annotation.
    type: bool
    default: false
  timeout:
    description:
      - Seconds Label Studio waits for the backend's predictions (Label Studio's default is 100). Left alone when
        not given. Not the timeout of this module's own requests (O(request_timeout)).
    type: float
  extra_params:
    description:
      - Extra parameters Label Studio passes to the backend's C(/setup). Left alone when not given.
    type: dict
  require_connected:
    description:
      - Fail when the backend is not connected (Label Studio's state C(CO)) after the module's work.
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
      - Reads the project's backends and reports what would change; Label Studio's validation of a new backend
        does not run (it cannot without creating it).
      - A project that does not exist yet (created by an earlier task in the same check run) gives a warning and
        C(changed=true).
  diff_mode:
    support: full
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
notes:
  - Listing a project's backends makes Label Studio probe each of them; RV(ml_backend.state) is fresh.
  - Label Studio refuses backends on loopback and private addresses unless it runs with C(ML_BLOCK_LOCAL_IP=false).
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Connect the Triton adapter to the NER project
  oceanid.fleet.label_studio_ml_backend:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    project: NER_Data
    backend_url: http://ls-triton-adapter.apps.svc:9090
    title: ls-triton-adapter
    is_interactive: true
    extra_params:
      model: docling_granite_python

- name: Disconnect it
  oceanid.fleet.label_studio_ml_backend:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    project: 3
    backend_url: http://ls-triton-adapter.apps.svc:9090
    state: absent
"""

RETURN = r"""
ml_backend:
  description:
    - The backend as Label Studio reports it after the module's work (in check mode, as it would be, without
      RV(ml_backend.id) when it would be created). Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    id:
      description: The backend's id.
      type: int
      returned: when it exists
    url:
      description: Its URL.
      type: str
      returned: success
    state:
      description: C(CO) connected, C(DI) disconnected, C(ER) error, C(TR) training, C(PR) predicting.
      type: str
      returned: when it exists
      sample: CO
    readable_state:
      description: The state in words.
      type: str
      returned: when it exists
      sample: Connected
    error_message:
      description: Label Studio's last error about the backend.
      type: str
      returned: when it exists
    model_version:
      description: The model version the backend's C(/setup) reported.
      type: str
      returned: when it exists
    title:
      description: Title.
      type: str
      returned: success
    is_interactive:
      description: Interactive pre-annotation.
      type: bool
      returned: success
    timeout:
      description: Label Studio's timeout for the backend.
      type: float
      returned: success
    extra_params:
      description: Parameters passed to C(/setup).
      type: dict
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
  description: Ids of the backends deleted (in check mode, that would be deleted).
  returned: always
  type: list
  elements: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio import label_studio_argument_spec
from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio_module import ProjectObjectRunner

_RETURNED = (
    "id",
    "url",
    "state",
    "readable_state",
    "error_message",
    "model_version",
    "title",
    "description",
    "is_interactive",
    "timeout",
    "extra_params",
    "project",
)
_MANAGED = ("title", "description", "is_interactive", "timeout", "extra_params")


def _public(backend):
    return {key: backend.get(key) for key in _RETURNED if key in backend}


def _managed(backend):
    return {key: backend.get(key) for key in ("url",) + _MANAGED if backend and key in backend}


def _equal(key, want, have):
    if key == "timeout" and want is not None and have is not None:
        return float(want) == float(have)
    if key == "description":
        return (want or "") == (have or "")
    return want == have


class MLBackendRunner(ProjectObjectRunner):
    kind = "ML backend"
    url_option = "backend_url"
    result_key = "ml_backend"

    def wanted(self):
        return {key: self.params[key] for key in _MANAGED if self.params[key] is not None}

    def matches(self, item):
        return (item.get("url") or "").rstrip("/") == self.url.rstrip("/")

    def list_objects(self):
        return self.client.list_ml_backends(self.project_id)

    def delete_object(self, item):
        self.client.delete_ml_backend(item["id"])

    def after_delete(self):
        # Label Studio's own webhook for the backend outlives it.
        hook = self.url.rstrip("/") + "/webhook"
        for webhook in self.client.list_webhooks(self.project_id):
            if webhook.get("project") == self.project_id and webhook.get("url") == hook:
                self.client.delete_webhook(webhook["id"])

    def shown(self, item):
        return _managed(item)

    def planned(self):
        return dict(self.wanted(), url=self.url)

    def present(self, current):
        wanted = self.wanted()
        if current is None:
            after = dict(wanted, url=self.url, project=self.project_id)
            self.result.update(changed=True, diff={"before": {}, "after": _managed(after)})
            if not self.module.check_mode:
                after = self.client.create_ml_backend(after)
        else:
            changes = {k: v for k, v in wanted.items() if not _equal(k, v, current.get(k))}
            after = current
            if changes:
                # The full object: Label Studio validates the backend again and needs url and project for it.
                body = dict(_managed(current), **changes)
                body.update(url=current["url"], project=self.project_id)
                body = {k: v for k, v in body.items() if v is not None}
                self.result["changed"] = True
                after = dict(current, **changes)
                if not self.module.check_mode:
                    after = self.client.update_ml_backend(current["id"], body)
            self.result["diff"] = {"before": _managed(current), "after": _managed(after)}
        self.result["ml_backend"] = _public(after)
        state = after.get("state")
        if self.params["require_connected"] and not self.module.check_mode and state != "CO":
            error = after.get("error_message")
            self.fail("Label Studio reports it not connected (state %s%s)" % (state, ": %s" % error if error else ""))


def main():
    argument_spec = label_studio_argument_spec()
    argument_spec.update(
        project={"type": "str", "required": True},
        backend_url={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        title={"type": "str", "default": "default"},
        description={"type": "str"},
        is_interactive={"type": "bool", "default": False},
        timeout={"type": "float"},
        extra_params={"type": "dict"},
        require_connected={"type": "bool", "default": True},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    module.exit_json(**MLBackendRunner(module).run())


if __name__ == "__main__":
    main()
