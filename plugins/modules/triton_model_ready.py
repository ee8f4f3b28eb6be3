#!/usr/bin/python
# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: triton_model_ready
short_description: Wait until NVIDIA Triton models are ready, or load or unload them
version_added: 0.1.0
description:
  - Talks to a Triton Inference Server over its HTTP API (KServe v2 protocol) and, depending on O(state),
    waits until models are ready (V(ready)), loads them and waits (V(loaded)), or unloads them and
    waits (V(unloaded)).
  - Readiness of a model is read from the repository index (C(POST /v2/repository/index)), one request
    per poll for all models, never from C(/v2/health/ready) alone (with Triton's default strict readiness
    that is false while any model loads or after any model failed to load). When the index shows every
    model READY, C(GET /v2/models/<name>[/versions/<version>]/ready) confirms each one.
  - Until the server answers, C(GET /v2/health/live) is polled; connection refused, timeouts, name
    resolution and TLS errors and any answer other than 200 count as "not yet" until O(timeout).
  - A model without O(models[].version) is ready when at least one of its versions is READY; with
    O(models[].version), that exact version must be READY.
  - A model that failed to load (index state C(UNAVAILABLE) with a reason other than C(unloaded)) makes the
    module fail without waiting for O(timeout), quoting Triton's reason. With O(state=ready) the failure
    must be seen on consecutive polls for at least one second first, so that a model another client is
    just reloading is not reported; with O(state=loaded) the failed load request is final.
  - A requested model that is not in the repository index at all, or a requested version that the index does not
    list for a model whose versions it lists, is absent. With O(state=ready) the module fails when that has held
    for one second (not after O(timeout)), unless O(absent_model=wait). A model on disk but never loaded (a
    name-only index entry) is not absent; another client may load it, so the module waits for it.
  - What touches the server. V(ready) only reads (health, the repository index, the ready endpoints).
    V(loaded) first checks every requested model against the index and fails, without sending anything, when
    a model is absent or, without O(reload=true), a requested version is not listed (a load request would
    only load the versions that serve again); only then does it send load requests, and only for the models
    that need one. V(unloaded) sends unload requests for the models that have a READY or loading version.
    Invalid input and a failed check change nothing.
  - When the module fails, it reports C(changed=false), with RV(loaded) and RV(unloaded) naming the requests
    that were sent before the failure. Its message names each model that is not ready, with its state and
    Triton's reason, or says that it is not in the repository index, or that the server was not reachable and why.
options:
  models:
    description:
      - The models to wait for, load or unload. Each element is a model name, or a dictionary with the
        keys below.
      - Required unless O(all_models=true).
    type: list
    elements: raw
    default: []
    suboptions:
      name:
        description:
          - The model name (its directory in the model repository).
        type: str
        required: true
      version:
        description:
          - A version that must be READY (a positive integer, as a number or a string).
          - Without it, any READY version makes the model ready.
          - Not allowed with O(state=unloaded) (Triton unloads whole models).
        type: raw
      config:
        description:
          - A configuration override sent with the load request, as a dictionary or a JSON object string
            in the JSON form of Triton's model configuration, for example C(max_batch_size) and
            C(instance_group) (see the examples).
          - Only with O(state=loaded). A READY model is loaded again only when one of the keys given
            differs from the configuration the server reports for it (C(GET /v2/models/<name>/config)).
          - Triton keeps an override until the next load; a later load without O(models[].config) reverts to
            the files in the repository.
        type: raw
  all_models:
    description:
      - With O(state=ready) and no O(models), wait for every model the server has tried to load.
      - That is every model with at least one versioned entry in the repository index. Models present on
        disk but never loaded (name-only entries, common in explicit model-control mode) are ignored, and so
        are models whose every version was unloaded on request (reason C(unloaded)).
      - Each such model must have every version READY, except versions unloaded on request.
      - When the index has no such model yet, the module returns at once with a warning.
    type: bool
    default: false
  state:
    description:
      - V(ready) only waits and changes nothing.
      - V(loaded) sends a load request for each model that is not READY, or whose requested version is not
        READY, and waits until it is. Needs a server in explicit model-control mode
        (C(--model-control-mode=explicit)).
      - V(unloaded) sends an unload request for each model that has a READY or loading version and waits until
        no version is READY, LOADING or UNLOADING. Needs explicit model-control mode too.
    type: str
    choices: [ready, loaded, unloaded]
    default: ready
  reload:
    description:
      - With O(state=loaded), send the load request even for models that are already READY. Triton reads the
        model directory again and reloads the model if its files changed (a no-op otherwise).
      - A requested version that the repository index does not list is loaded only with O(reload=true) (for
        example a version directory just added); if it still does not appear, the module fails.
      - If the reload fails, Triton keeps the previously loaded version serving; the module fails quoting
        Triton's error and says whether the previous version is still READY.
    type: bool
    default: false
  absent_model:
    description:
      - With O(state=ready), what to do about a model, or a version, that is not in the repository index.
      - V(fail) fails once it has been absent for one second (two polls), naming it.
      - V(wait) waits until it appears, up to O(timeout); for a server in poll model-control mode, or a model
        directory that another process is still putting in place.
      - Only V(fail) is accepted with O(state=loaded) and O(state=unloaded).
    type: str
    choices: [fail, wait]
    default: fail
  timeout:
    description:
      - How long to wait in total, in seconds, for the server, the load and unload requests and the models.
    type: float
    default: 300
  interval:
    description:
      - Seconds between two polls. A poll is one small request for all models.
    type: float
    default: 0.1
extends_documentation_fragment:
  - oceanid.fleet.triton
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - V(ready) runs as usual. V(loaded) and V(unloaded) read the server's state and report what they would
        load or unload, without sending a request that changes anything.
      - If the server does not answer the first request at all in check mode (for example in a check-mode
        run right after installing Triton, when it is not running yet), the module does not wait; it returns
        with a warning, C(changed=false) for V(ready) and C(changed=true) for V(loaded) and V(unloaded).
  diff_mode:
    support: full
    details:
      - The state of each model before and after (predicted in check mode), for V(loaded) and V(unloaded).
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: partial
    details:
      - With O(reload=true), a load request is sent, and C(changed) reported, on every run.
notes:
  - The module runs on the target host; O(url) is reached from there. Use C(delegate_to) to check a server
    from somewhere else, for example through a Cloudflare tunnel with O(headers).
  - A load request returns when Triton finished loading (or failed), so a large model keeps one request
    open for as long as it takes; that time counts against O(timeout).
seealso:
  - name: Triton model management
    description: Model control modes, explicit load and unload, and what a reload does.
    link: https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/user_guide/model_management.html
  - name: Triton model repository extension
    description: The repository index, load and unload endpoints this module uses.
    link: https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Wait until the models Triton serves are ready after a restart
  oceanid.fleet.triton_model_ready:
    models:
      - detector
      - name: embedder
        version: 3
    timeout: 600

- name: Wait for every model the server was started with
  oceanid.fleet.triton_model_ready:
    all_models: true

- name: Load models (explicit model-control mode) and wait until they serve
  oceanid.fleet.triton_model_ready:
    state: loaded
    models:
      - detector
      - name: embedder
        config:
          max_batch_size: 16
          instance_group:
            - kind: KIND_GPU
              count: 2

- name: Reload a model after new files were put into its directory
  oceanid.fleet.triton_model_ready:
    state: loaded
    reload: true
    models: [detector]

- name: Wait for a model that the model puller has not put in place yet (poll model-control mode)
  oceanid.fleet.triton_model_ready:
    models: [detector]
    absent_model: wait
    timeout: 900

- name: Unload a model that is retired
  oceanid.fleet.triton_model_ready:
    state: unloaded
    models: [old_detector]

- name: Check a server behind Cloudflare Access from the controller
  oceanid.fleet.triton_model_ready:
    url: https://triton.example.com
    headers:
      CF-Access-Client-Id: "{{ cf_access_client_id }}"
      CF-Access-Client-Secret: "{{ cf_access_client_secret }}"
    models: [detector]
  delegate_to: localhost
"""

RETURN = r"""
models:
  description:
    - The model versions that were checked, after the module's work, one element per version.
    - For a model requested without a version, every version the index lists; a model without versions
      (not loaded, or not in the index) has one element with RV(models[].version) and RV(models[].state) null.
  returned: always
  type: list
  elements: dict
  sample:
    - name: detector
      version: "1"
      state: READY
      reason: ""
      ready: true
    - name: embedder
      version: "3"
      state: UNAVAILABLE
      reason: "Internal: ModuleNotFoundError: No module named 'torch'"
      ready: false
  contains:
    name:
      description: Model name.
      type: str
      returned: always
    version:
      description: Version, as the string Triton uses, or null.
      type: str
      returned: always
    state:
      description: Index state (C(READY), C(LOADING), C(UNLOADING), C(UNAVAILABLE), C(UNKNOWN)) or null.
      type: str
      returned: always
    reason:
      description:
        - Triton's reason for the state, for example C(unloaded) or a load error, verbatim; or why there is
          no state (C(not loaded), C(not in the repository index), C(server not reachable)).
      type: str
      returned: always
    ready:
      description: Whether this version is READY.
      type: bool
      returned: always
waited:
  description: Seconds from the module's start until it returned.
  returned: always
  type: float
  sample: 2.351
loaded:
  description:
    - Models a load request was sent for (in check mode, would be sent for).
    - When the module fails, the requests sent before the failure, the one that failed included.
  returned: always
  type: list
  elements: str
  sample: [detector]
unloaded:
  description: Models an unload request was sent for, in the same way as RV(loaded).
  returned: always
  type: list
  elements: str
  sample: []
"""

import json
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.triton import (
    LOADING,
    READY,
    UNLOADING,
    TritonClient,
    TritonError,
    triton_argument_spec,
    validate_url,
)
from ansible_collections.oceanid.fleet.plugins.module_utils.triton_readiness import (
    STATUS_ABSENT,
    ModelWaiter,
    WaitFailed,
    assess,
    config_matches,
    describe,
    index_entries,
    serving_rows,
    summary,
)

# Check mode asks once, this quickly, whether the server is there at all.
_CHECK_MODE_PROBE_TIMEOUT = 5.0
_ABSENT_HINT = " (absent_model=wait waits for a model to appear, for example a server in poll mode)"


class _Failed(Exception):
    """Ends the module with fail_json(msg=...)."""


# -- input ---------------------------------------------------------------------------------------


def _version(raw, name):
    if raw is None or raw == "":
        return None
    text = raw if isinstance(raw, str) else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        text = str(raw)
    if text is None or not re.match(r"^\s*[0-9]+\s*$", text) or int(text) <= 0:
        raise _Failed("models: version of model %r must be a positive integer, got %r" % (name, raw))
    return str(int(text))


def _config(raw, name):
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise _Failed("models: config of model %r is not valid JSON: %s" % (name, exc))
    if not isinstance(raw, dict):
        raise _Failed(
            "models: config of model %r must be a dictionary or a JSON object string, got %s"
            % (name, type(raw).__name__)
        )
    return raw


def normalise_models(raw_models, state):
    """[{name, version, config}] from the models option; raises _Failed naming the bad element."""
    result = []
    seen = {}
    for position, item in enumerate(raw_models or []):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise _Failed(
                "models[%d]: expected a model name or a dictionary with 'name', got %s %r"
                % (position, type(item).__name__, item)
            )
        unknown = sorted(set(item) - {"name", "version", "config"})
        if unknown:
            raise _Failed(
                "models[%d]: unknown key(s) %s; expected name, version, config" % (position, ", ".join(unknown))
            )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Failed("models[%d]: expected a non-empty string 'name', got %r" % (position, name))
        version = _version(item.get("version"), name)
        config = _config(item.get("config"), name)
        if config is not None and state != "loaded":
            raise _Failed("models: config of model %r is only used with state=loaded (state is %s)" % (name, state))
        if version is not None and state == "unloaded":
            raise _Failed(
                "models: model %r has a version, but Triton unloads whole models; "
                "give only the name with state=unloaded" % name
            )
        if name in seen and seen[name] != config:
            raise _Failed("models: model %r is listed more than once with different config" % name)
        seen[name] = config
        model = {"name": name, "version": version, "config": config}
        if model not in result:
            result.append(model)
    return result


# -- the module --------------------------------------------------------------------------------------


class TritonModelReady:
    """One run of the module: input checks, then the state's work through a ModelWaiter."""

    def __init__(self, module, client=None):
        self.module = module
        params = module.params
        self.url = params["url"]
        self.state = params["state"]
        self.reload = params["reload"]
        self.all_models = params["all_models"]
        self.absent_model = params["absent_model"]
        self.timeout = params["timeout"]
        self.interval = params["interval"]
        self.started = time.monotonic()
        self.models = []
        self.client = client
        self.waiter = None
        self.result = {"changed": False, "models": [], "waited": 0.0, "loaded": [], "unloaded": []}

    def validate(self):
        params = self.module.params
        problem = validate_url(self.url)
        if problem:
            raise _Failed(problem)
        if self.timeout < 0:
            raise _Failed("timeout must be 0 or more seconds, got %s" % self.timeout)
        if self.interval <= 0:
            raise _Failed("interval must be more than 0 seconds, got %s" % self.interval)
        headers = {}
        for key, value in (params["headers"] or {}).items():
            value = "" if value is None else str(value)
            if any(c in str(key) + value for c in "\r\n") or not str(key).strip():
                raise _Failed("headers: header %r has an empty name or a line break in its name or value" % key)
            headers[str(key)] = value
        self.models = normalise_models(params["models"], self.state)
        if self.all_models:
            if self.state != "ready":
                raise _Failed("all_models is only used with state=ready (state is %s)" % self.state)
            if self.models:
                raise _Failed("give either models or all_models=true, not both")
        elif not self.models:
            raise _Failed(
                "models is empty: list the models to %s, or set all_models=true with state=ready"
                % {"ready": "wait for", "loaded": "load", "unloaded": "unload"}[self.state]
            )
        if self.absent_model != "fail" and self.state != "ready":
            raise _Failed(
                "absent_model=%s is only used with state=ready (state is %s)" % (self.absent_model, self.state)
            )
        if self.client is None:
            self.client = TritonClient(self.url, headers=headers, validate_certs=params["validate_certs"])
        self.waiter = ModelWaiter(
            self.client,
            self.timeout,
            interval=self.interval,
            started=self.started,
            absent_model=self.absent_model,
            strict_versions=self.all_models,
            absent_hint=_ABSENT_HINT,
        )

    def elapsed(self):
        return round(time.monotonic() - self.started, 3)

    def fail(self, msg):
        """A failed run reports changed=false; loaded/unloaded say which requests were sent."""
        if self.waiter is not None and self.waiter.rows:
            self.result["models"] = self.waiter.rows
        self.result["changed"] = False
        self.result["waited"] = self.elapsed()
        self.module.fail_json(msg=msg, **self.result)

    def wait_for_index(self, what):
        return self.waiter.wait_for_index(what, self.models)

    def wait_ready(self, what, settled_is_final=False, index=None):
        index, models = self.waiter.wait_ready(
            None if self.all_models else self.models, what, settled_is_final=settled_is_final, index=index
        )
        self.result["models"] = self.waiter.rows
        return index, models

    def check_mode_probe(self):
        """Check mode: one quick attempt; None when the server does not answer (no waiting)."""
        index = self.waiter.poll_index(timeout=max(min(self.timeout, _CHECK_MODE_PROBE_TIMEOUT), 0.5))
        error = self.waiter.last_error
        if index is None and error is not None and not error.unreachable and self.timeout > 0:
            # It answered (not live yet, an HTTP error): worth waiting for, as in a real run.
            index = self.wait_for_index("for the server")
        return index

    def rows_of(self, index):
        return [row for model in self.models for row in assess(model, index)["rows"]]

    # -- states ------------------------------------------------------------------------------------------

    def run(self):
        self.validate()
        if self.module.check_mode:
            index = self.check_mode_probe()
            if index is None:
                return self.unreachable_in_check_mode()
        else:
            index = None
        if self.state == "ready":
            self.wait_ready("waiting for the models to be ready", index=index)
            if self.all_models and not self.result["models"]:
                self.module.warn("all_models: the repository index at %s lists no loaded model yet" % self.url)
        else:
            if index is None:
                index = self.wait_for_index("waiting for the server")
            if self.state == "loaded":
                self.run_loaded(index)
            else:
                self.run_unloaded(index)
        self.result["waited"] = self.elapsed()
        return self.result

    def unreachable_in_check_mode(self):
        self.module.warn(
            "check mode: %s; not waiting for it. Reporting %s."
            % (
                self.waiter.server_problem(),
                "no change" if self.state == "ready" else "that models would be " + self.state,
            )
        )
        self.result["changed"] = self.state != "ready"
        self.result["models"] = self.waiter.unknown_rows(self.models)
        if self.state == "loaded":
            self.result["loaded"] = [m["name"] for m in self.models]
        elif self.state == "unloaded":
            self.result["unloaded"] = [m["name"] for m in self.models]
        self.result["waited"] = self.elapsed()
        return self.result

    def refuse_absent(self, index):
        """state=loaded: fail before any request when a model, or a version, is not in the index."""
        problems = []
        for model in self.models:
            assessment = assess(model, index)
            if assessment["status"] != STATUS_ABSENT:
                continue
            if not index_entries(index, model["name"])[0]:
                problems.append(
                    "%s (is there a directory %r in the model repository?)" % (assessment["problems"][0], model["name"])
                )
            elif not self.reload:
                problems.append(
                    "%s; a load request would only load the model's versions again "
                    "(reload=true sends it, to load a version just added to the model directory)"
                    % assessment["problems"][0]
                )
        if problems:
            self.result["models"] = self.rows_of(index)
            raise _Failed("nothing loaded on %s: %s" % (self.url, "; ".join(problems)))

    def needs_load(self, model, index):
        if self.reload:
            return True
        same_name = [m for m in self.models if m["name"] == model["name"]]
        if not all(assess(m, index)["status"] == "ready" for m in same_name):
            return True
        if model["config"] is None:
            return False
        try:
            served = self.client.model_config(model["name"], timeout=self.waiter.request_timeout())
        except TritonError:
            return True
        return not config_matches(model["config"], served)

    def send(self, action, name, config=None):
        """A load or unload request; retried while the server does not answer, until the deadline."""
        waiter = self.waiter
        while True:
            try:
                if action == "load":
                    self.client.load(name, config=config, timeout=max(waiter.remaining(), 1.0))
                else:
                    self.client.unload(name, timeout=waiter.request_timeout())
                return
            except TritonError as exc:
                if not exc.unreachable:
                    raise
                waiter.last_error = exc
                waiter.live_seen = False
                if waiter.remaining() <= 0:
                    raise _Failed(
                        "timed out after %s s sending the %s request for model %r: %s"
                        % (self.timeout, action, name, waiter.server_problem())
                    )
                waiter.pause()
                self.wait_for_index("for the server to %s model %r" % (action, name))

    def explain_request_error(self, action, name, exc, was_ready=False, in_index=False):
        if exc.not_explicit_mode:
            return (
                "cannot %s model %r: the server at %s is not in explicit model-control mode "
                "(start tritonserver with --model-control-mode=explicit). Triton: %s" % (action, name, self.url, exc)
            )
        text = "%s of model %r failed on %s: %s" % (action, name, self.url, exc)
        if action == "load" and exc.status == 500 and "failed to poll from model repository" in exc.message:
            if in_index:
                text += (
                    " (the directory is there but Triton could not read it, for example a config.pbtxt it "
                    "cannot parse; the server log has the details after 'Poll failed for model directory')"
                )
            else:
                text += " (is there a directory %r in the model repository?)" % name
        if action == "load" and was_ready:
            index = self.waiter.poll_index()
            still = [] if index is None else serving_rows(name, index)
            if still:
                text += "; the previously loaded version keeps serving (%s)" % ", ".join(
                    "version %s READY" % row["version"] for row in still
                )
            else:
                text += "; the model is not READY any more"
        return text

    def plan(self, key, index, wanted, predicted):
        """(the diff's before, the models ``wanted`` picks, once each), recorded under ``key``.

        In check mode the names are None: the result says what would be sent, with the predicted diff.
        """
        before = {m["name"]: summary(m, index) for m in self.models}
        names = []
        for model in self.models:
            if model["name"] not in names and wanted(model, index):
                names.append(model["name"])
        self.result[key] = names
        self.result["changed"] = bool(names)
        if not self.module.check_mode:
            return before, names
        self.result["models"] = self.rows_of(index)
        self.set_diff(before, dict(before, **dict.fromkeys(names, predicted)))
        return before, None

    def run_loaded(self, index):
        self.refuse_absent(index)
        before, names = self.plan("loaded", index, self.needs_load, "READY (after a load request)")
        if names is None:
            return
        for name in names:
            config = next(m["config"] for m in self.models if m["name"] == name)
            was_ready = bool(serving_rows(name, index))
            in_index = bool(index_entries(index, name)[0])
            try:
                self.send("load", name, None if config is None else json.dumps(config, sort_keys=True))
            except TritonError as exc:
                raise _Failed(self.explain_request_error("load", name, exc, was_ready, in_index))
        index, dummy = self.wait_ready("waiting for the models to be ready after loading", settled_is_final=True)
        self.set_diff(before, {m["name"]: summary(m, index) for m in self.models})

    def run_unloaded(self, index):
        before, names = self.plan(
            "unloaded",
            index,
            lambda model, index: any(row["state"] in (READY, LOADING) for row in assess(model, index)["rows"]),
            "UNAVAILABLE: unloaded (after an unload request)",
        )
        if names is None:
            return
        for name in names:
            try:
                self.send("unload", name)
            except TritonError as exc:
                raise _Failed(self.explain_request_error("unload", name, exc))
        waiter = self.waiter
        while True:
            index = waiter.poll_index()
            if index is not None:
                rows = self.rows_of(index)
                self.result["models"] = rows
                busy = [row for row in rows if row["state"] in (READY, LOADING, UNLOADING)]
                if not busy:
                    break
            if waiter.remaining() <= 0:
                if index is None:
                    raise _Failed(waiter.timed_out("waiting for the models to unload", models=self.models))
                raise _Failed(
                    "timed out after %s s waiting for the models to unload; still: %s"
                    % (self.timeout, "; ".join(describe(row) for row in busy))
                )
            waiter.pause()
        self.set_diff(before, {m["name"]: summary(m, index) for m in self.models})

    def set_diff(self, before, after):
        if self.module._diff:  # pylint: disable=protected-access
            self.result["diff"] = {"before": before, "after": after}


def main():
    argument_spec = triton_argument_spec()
    argument_spec.update(
        models={"type": "list", "elements": "raw", "default": []},
        all_models={"type": "bool", "default": False},
        state={"type": "str", "default": "ready", "choices": ["ready", "loaded", "unloaded"]},
        reload={"type": "bool", "default": False},
        absent_model={"type": "str", "default": "fail", "choices": ["fail", "wait"]},
        timeout={"type": "float", "default": 300.0},
        interval={"type": "float", "default": 0.1},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner = TritonModelReady(module)
    try:
        result = runner.run()
    except (_Failed, WaitFailed) as exc:
        runner.fail(str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
