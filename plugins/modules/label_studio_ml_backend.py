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

from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio import (
    LabelStudioError,
    client_from_module,
    fail_from_error,
    label_studio_argument_spec,
    resolve_project_for_module,
)

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


def _same_url(a, b):
    return (a or "").rstrip("/") == (b or "").rstrip("/")


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
    params = module.params
    backend_url = params["backend_url"]
    where = "ML backend %s" % backend_url
    result = {"changed": False, "ml_backend": {}, "project_id": None, "deleted": []}
    if not backend_url.startswith(("http://", "https://")):
        module.fail_json(msg="%s: backend_url must start with http:// or https://" % where, **result)
    client = client_from_module(module)
    try:
        project = resolve_project_for_module(module, client)
        wanted = {key: params[key] for key in _MANAGED if params[key] is not None}
        if project is None:  # check mode, the project is not there yet
            if params["state"] == "present":
                result["ml_backend"] = dict(wanted, url=backend_url)
                result.update(changed=True, diff={"before": {}, "after": result["ml_backend"]})
            module.exit_json(**result)
        project_id = project["id"]
        where += " of project %s (%r)" % (project_id, project.get("title"))
        result["project_id"] = project_id
        backends = [b for b in client.list_ml_backends(project_id) if _same_url(b.get("url"), backend_url)]

        if params["state"] == "absent":
            if backends:
                result.update(changed=True, deleted=[b["id"] for b in backends])
                result["diff"] = {"before": _managed(backends[0]), "after": {}}
                if not module.check_mode:
                    for backend in backends:
                        client.delete_ml_backend(backend["id"])
                    hook = backend_url.rstrip("/") + "/webhook"
                    for webhook in client.list_webhooks(project_id):
                        if webhook.get("project") == project_id and webhook.get("url") == hook:
                            client.delete_webhook(webhook["id"])
            module.exit_json(**result)

        current = backends[0] if backends else None
        if len(backends) > 1:
            module.warn(
                "%s: %d backends with this URL (ids %s); managing id %s"
                % (where, len(backends), ", ".join(str(b["id"]) for b in backends), current["id"])
            )
        if current is None:
            after = dict(wanted, url=backend_url, project=project_id)
            result.update(changed=True, diff={"before": {}, "after": _managed(after)})
            if not module.check_mode:
                after = client.create_ml_backend(after)
        else:
            changes = {k: v for k, v in wanted.items() if not _equal(k, v, current.get(k))}
            after = current
            if changes:
                # The full object: Label Studio validates the backend again and needs url and project for it.
                body = dict(_managed(current), **changes)
                body.update(url=current["url"], project=project_id)
                body = {k: v for k, v in body.items() if v is not None}
                result["changed"] = True
                after = dict(current, **changes)
                if not module.check_mode:
                    after = client.update_ml_backend(current["id"], body)
            result["diff"] = {"before": _managed(current), "after": _managed(after)}
        result["ml_backend"] = _public(after)
        state = after.get("state")
        if params["require_connected"] and not module.check_mode and state != "CO":
            module.fail_json(
                msg="%s: Label Studio reports it not connected (state %s%s)"
                % (where, state, ": %s" % after.get("error_message") if after.get("error_message") else ""),
                **result,
            )
    except LabelStudioError as exc:
        fail_from_error(module, exc, where, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
