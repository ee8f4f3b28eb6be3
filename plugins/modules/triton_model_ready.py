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
  - When the module fails, its message names each model that is not ready, with its state and Triton's reason,
    or says that it is not in the repository index, or that the server was not reachable and why.
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
      - If the reload fails, Triton keeps the previously loaded version serving; the module fails quoting
        Triton's error and says whether the previous version is still READY.
    type: bool
    default: false
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
  description: Models a load request was sent for (in check mode, would be sent for).
  returned: always
  type: list
  elements: str
  sample: [detector]
unloaded:
  description: Models an unload request was sent for (in check mode, would be sent for).
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
    REASON_UNLOADED,
    UNAVAILABLE,
    UNLOADING,
    TritonClient,
    TritonError,
    triton_argument_spec,
    validate_url,
)

# A failure seen with state=ready must persist this long (and over two polls) before the module gives up.
_FAILURE_GRACE = 1.0
# Per-request timeout cap while polling (a load request may use all the remaining time).
_POLL_REQUEST_TIMEOUT = 10.0
# Check mode asks once, this quickly, whether the server is there at all.
_CHECK_MODE_PROBE_TIMEOUT = 5.0

_NOT_IN_INDEX = "not in the repository index"
_NOT_LOADED = "not loaded"


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


# -- reading the index ---------------------------------------------------------------------------


def _entries(index, name):
    """(all entries of a model, those with a state)."""
    entries = [entry for entry in index if entry.get("name") == name]
    return entries, [entry for entry in entries if entry.get("state")]


def _row(name, entry=None, version=None, reason=""):
    if entry is None:
        return {"name": name, "version": version, "state": None, "reason": reason, "ready": False}
    version = entry.get("version")
    return {
        "name": name,
        "version": None if version is None else str(version),
        "state": entry.get("state"),
        "reason": entry.get("reason") or "",
        "ready": entry.get("state") == READY,
    }


def _is_failure(row):
    return row["state"] == UNAVAILABLE and bool(row["reason"]) and row["reason"] != REASON_UNLOADED


def _label(row, with_version=True):
    if with_version and row["version"] is not None:
        return "%s version %s" % (row["name"], row["version"])
    return row["name"]


def _describe(row):
    """'name[ version v]: STATE[: reason]' or 'name: reason'."""
    if row["state"] is None:
        return "%s: %s" % (_label(row), row["reason"])
    if row["reason"]:
        return "%s: %s: %s" % (_label(row), row["state"], row["reason"])
    return "%s: %s" % (_label(row), row["state"])


def assess(model, index, strict_versions=False):
    """How one requested model stands in the index.

    Returns a dict: rows (per version), status ('ready', 'waiting', 'failed'), problems (texts for messages).
    strict_versions (all_models): every version must be READY, except versions unloaded on request.
    """
    name, version = model["name"], model["version"]
    entries, versioned = _entries(index, name)
    if version is not None:
        match = [entry for entry in versioned if str(entry.get("version")) == version]
        if match:
            row = _row(name, match[0])
            rows = [row]
            if row["ready"]:
                return {"rows": rows, "status": "ready", "problems": []}
            return {"rows": rows, "status": "failed" if _is_failure(row) else "waiting", "problems": [_describe(row)]}
        if versioned:
            present = ", ".join("%s %s" % (entry.get("version"), entry.get("state")) for entry in versioned)
            reason = "%s (versions listed: %s)" % (_NOT_IN_INDEX, present)
        else:
            reason = _NOT_LOADED if entries else _NOT_IN_INDEX
        row = _row(name, version=version, reason=reason)
        return {"rows": [row], "status": "waiting", "problems": [_describe(row)]}
    if not versioned:
        row = _row(name, reason=_NOT_LOADED if entries else _NOT_IN_INDEX)
        if entries:
            row["reason"] = _NOT_LOADED
            problem = (
                "%s: present in the repository but not loaded (in explicit model-control mode, state=loaded "
                "loads it; in none or poll mode, Triton could not read the model directory, for example a "
                "config.pbtxt it cannot parse: see the server log)" % name
            )
        else:
            problem = _describe(row)
        return {"rows": [row], "status": "waiting", "problems": [problem]}
    rows = [_row(name, entry) for entry in versioned]
    failures = [row for row in rows if _is_failure(row)]
    transitional = [row for row in rows if row["state"] in (LOADING, UNLOADING)]
    if strict_versions:
        pending = [row for row in rows if not row["ready"] and row["reason"] != REASON_UNLOADED]
        ready = not pending and any(row["ready"] for row in rows)
    else:
        pending = [row for row in rows if not row["ready"]]
        ready = any(row["ready"] for row in rows)
    if ready:
        return {"rows": rows, "status": "ready", "problems": []}
    status = "failed" if failures and not transitional else "waiting"
    return {"rows": rows, "status": status, "problems": [_describe(row) for row in (pending or rows)]}


def all_models_in(index):
    """The models the server tried to load: a versioned entry, not every version unloaded on request."""
    names = []
    for entry in index:
        name = entry.get("name")
        if name in names or not entry.get("state"):
            continue
        rows = [_row(name, e) for e in _entries(index, name)[1]]
        if all(row["state"] == UNAVAILABLE and row["reason"] == REASON_UNLOADED for row in rows):
            continue
        names.append(name)
    return [{"name": name, "version": None, "config": None} for name in sorted(names)]


def _summary(model, index):
    """One line per model for diff output."""
    rows = assess(model, index)["rows"]
    if len(rows) == 1 and rows[0]["state"] is None:
        return rows[0]["reason"]
    return ", ".join(
        "version %s %s%s" % (row["version"], row["state"], ": " + row["reason"] if row["reason"] else "")
        for row in rows
    )


def _config_matches(wanted, served):
    """Every key of the override has the served value (lists element by element; scalars as text)."""
    if isinstance(wanted, dict):
        return isinstance(served, dict) and all(
            key in served and _config_matches(value, served[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(served, list)
            and len(wanted) == len(served)
            and all(_config_matches(w, s) for w, s in zip(wanted, served))
        )
    return _scalar(wanted) == _scalar(served)


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the module --------------------------------------------------------------------------------------


class TritonModelReady:
    def __init__(self, module, client=None):
        self.module = module
        params = module.params
        self.url = params["url"]
        self.state = params["state"]
        self.reload = params["reload"]
        self.all_models = params["all_models"]
        self.timeout = params["timeout"]
        self.interval = params["interval"]
        self.started = time.monotonic()
        self.deadline = self.started + self.timeout
        self.models = []
        self.client = client
        self.live_seen = False
        self.last_error = None
        self.failing_since = {}
        self.result = {"changed": False, "models": [], "waited": 0.0, "loaded": [], "unloaded": []}

    # -- plumbing ------------------------------------------------------------------------------------

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
        if self.client is None:
            self.client = TritonClient(
                self.url, headers=headers, timeout=_POLL_REQUEST_TIMEOUT, validate_certs=params["validate_certs"]
            )

    def remaining(self):
        return self.deadline - time.monotonic()

    def request_timeout(self, cap=_POLL_REQUEST_TIMEOUT):
        return max(min(self.remaining(), cap), 0.5)

    def pause(self):
        delay = min(self.interval, self.remaining())
        if delay > 0:
            time.sleep(delay)

    def poll_index(self, timeout=None):
        """One poll: the index, or None (the reason is kept in last_error)."""
        timeout = self.request_timeout() if timeout is None else timeout
        try:
            if not self.live_seen:
                if not self.client.live(timeout=timeout):
                    self.last_error = TritonError(
                        "server at %s is not live yet (GET /v2/health/live answered 400)" % self.url, status=400
                    )
                    return None
                self.live_seen = True
            index = self.client.index(timeout=timeout)
        except TritonError as exc:
            if exc.unreachable:
                self.live_seen = False
            self.last_error = exc
            return None
        self.last_error = None
        return index

    def server_problem(self):
        exc = self.last_error
        if exc is None:
            return "no answer from the server at %s" % self.url
        if exc.unreachable:
            return "server not reachable at %s: %s" % (self.url, exc.message)
        if exc.status == 400 and "not live" in exc.message:
            return exc.message
        return "server at %s answered %s %s: %s" % (self.url, exc.method or "", exc.url or "", exc)

    def unknown_rows(self):
        """Rows for the requested models when the index could not be read."""
        exc = self.last_error
        reason = "server not reachable" if exc is None or exc.unreachable else "no repository index: %s" % exc
        return [_row(m["name"], version=m["version"], reason=reason) for m in self.models]

    def elapsed(self):
        return round(time.monotonic() - self.started, 3)

    def fail(self, msg):
        self.result["waited"] = self.elapsed()
        self.module.fail_json(msg=msg, **self.result)

    def timed_out(self, what, assessments=None):
        head = "timed out after %s s %s" % (self.timeout, what)
        if assessments is None:
            self.result["models"] = self.unknown_rows()
            return "%s: %s" % (head, self.server_problem())
        problems = [p for a in assessments if a["status"] != "ready" for p in a["problems"]]
        text = "%s; not ready: %s" % (head, "; ".join(problems))
        if self.last_error is not None:
            text += " (last poll: %s)" % self.server_problem()
        return text

    def wait_for_index(self, what):
        index = self.poll_index()
        while index is None:
            if self.remaining() <= 0:
                raise _Failed(self.timed_out(what))
            self.pause()
            index = self.poll_index()
        return index

    def check_mode_probe(self):
        """Check mode: one quick attempt; None when the server does not answer (no waiting)."""
        index = self.poll_index(timeout=max(min(self.timeout, _CHECK_MODE_PROBE_TIMEOUT), 0.5))
        if index is None and self.last_error is not None and not self.last_error.unreachable and self.timeout > 0:
            # It answered (not live yet, an HTTP error): worth waiting for, as in a real run.
            index = self.wait_for_index("for the server")
        return index

    def assess_all(self, index, models=None):
        models = self.models if models is None else models
        return [assess(model, index, strict_versions=self.all_models) for model in models]

    # -- waiting ---------------------------------------------------------------------------------------

    def confirm_ready(self, models):
        """GET .../ready for each model; None when all are 200, else a text."""
        for model in models:
            try:
                if not self.client.model_ready(model["name"], model["version"], timeout=self.request_timeout()):
                    return "%s: READY in the repository index, but its ready endpoint does not answer 200" % (
                        _label(_row(model["name"], version=model["version"]))
                    )
            except TritonError as exc:
                self.last_error = exc
                if exc.unreachable:
                    self.live_seen = False
                return "%s: %s" % (model["name"], self.server_problem())
        return None

    def stable_failures(self, assessments):
        """Failed models (state=ready): those failing for two polls and _FAILURE_GRACE seconds."""
        now = time.monotonic()
        stable = []
        failing = {}
        for assessment in assessments:
            if assessment["status"] != "failed":
                continue
            key = (assessment["rows"][0]["name"], tuple(p for p in assessment["problems"]))
            first, count = self.failing_since.get(key, (now, 0))
            failing[key] = (first, count + 1)
            if count + 1 >= 2 and now - first >= _FAILURE_GRACE:
                stable.append(assessment)
        self.failing_since = failing
        return stable

    def wait_ready(self, models, what, settled_is_final=False, index=None):
        """Poll until every model is ready; fail on a stable failure or at the deadline.

        settled_is_final (after load requests returned): a model that is not ready and not loading or
        unloading will not become ready by waiting, so it fails at once.
        """
        assessments = None
        while True:
            if index is None:
                index = self.poll_index()
            if index is not None:
                if self.all_models:
                    models = all_models_in(index)
                assessments = self.assess_all(index, models)
                self.result["models"] = [row for a in assessments for row in a["rows"]]
                if all(a["status"] == "ready" for a in assessments):
                    problem = self.confirm_ready(models)
                    if problem is None:
                        return index, models
                    self.last_error = TritonError(problem)
                if settled_is_final:
                    failed = [
                        a
                        for a in assessments
                        if a["status"] != "ready" and not any(row["state"] in (LOADING, UNLOADING) for row in a["rows"])
                    ]
                else:
                    failed = self.stable_failures(assessments)
                if failed:
                    problems = [p for a in assessments if a["status"] != "ready" for p in a["problems"]]
                    verb = "failed to load" if any(a["status"] == "failed" for a in failed) else "will not become ready"
                    raise _Failed(
                        "%s %s on %s: %s"
                        % ("model" if len(problems) == 1 else "models", verb, self.url, "; ".join(problems))
                    )
            if self.remaining() <= 0:
                if assessments is None:
                    raise _Failed(self.timed_out(what))
                raise _Failed(self.timed_out(what, assessments))
            self.pause()
            index = None

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
            self.wait_ready(self.models, "waiting for the models to be ready", index=index)
            if self.all_models and not self.result["models"]:
                self.module.warn("all_models: the repository index at %s lists no loaded model yet" % self.url)
        elif self.state == "loaded":
            self.run_loaded(index)
        else:
            self.run_unloaded(index)
        self.result["waited"] = self.elapsed()
        return self.result

    def unreachable_in_check_mode(self):
        self.module.warn(
            "check mode: %s; not waiting for it. Reporting %s."
            % (self.server_problem(), "no change" if self.state == "ready" else "that models would be " + self.state)
        )
        self.result["changed"] = self.state != "ready"
        self.result["models"] = self.unknown_rows()
        if self.state == "loaded":
            self.result["loaded"] = [m["name"] for m in self.models]
        elif self.state == "unloaded":
            self.result["unloaded"] = [m["name"] for m in self.models]
        self.result["waited"] = self.elapsed()
        return self.result

    def needs_load(self, model, index):
        if self.reload:
            return True
        same_name = [m for m in self.models if m["name"] == model["name"]]
        if not all(assess(m, index)["status"] == "ready" for m in same_name):
            return True
        if model["config"] is None:
            return False
        try:
            served = self.client.model_config(model["name"], timeout=self.request_timeout())
        except TritonError:
            return True
        return not _config_matches(model["config"], served)

    def send(self, action, name, config=None):
        """A load or unload request; retried while the server does not answer, until the deadline."""
        while True:
            try:
                if action == "load":
                    self.client.load(name, config=config, timeout=max(self.remaining(), 1.0))
                else:
                    self.client.unload(name, timeout=self.request_timeout())
                return
            except TritonError as exc:
                if not exc.unreachable:
                    raise
                self.last_error = exc
                self.live_seen = False
                if self.remaining() <= 0:
                    raise _Failed(
                        "timed out after %s s sending the %s request for model %r: %s"
                        % (self.timeout, action, name, self.server_problem())
                    )
                self.pause()
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
            index = self.poll_index()
            still = []
            if index is not None:
                rows = assess({"name": name, "version": None, "config": None}, index)["rows"]
                still = [row for row in rows if row["ready"]]
            if still:
                text += "; the previously loaded version keeps serving (%s)" % ", ".join(
                    "version %s READY" % row["version"] for row in still
                )
            else:
                text += "; the model is not READY any more"
        return text

    def run_loaded(self, index):
        if index is None:
            index = self.wait_for_index("waiting for the server")
        before = {m["name"]: _summary(m, index) for m in self.models}
        names = []
        for model in self.models:
            if model["name"] not in names and self.needs_load(model, index):
                names.append(model["name"])
        self.result["loaded"] = names
        self.result["changed"] = bool(names)
        if self.module.check_mode:
            self.result["models"] = [row for a in self.assess_all(index) for row in a["rows"]]
            after = dict(before, **dict.fromkeys(names, "READY (after a load request)"))
            self.set_diff(before, after)
            return
        for name in names:
            config = next(m["config"] for m in self.models if m["name"] == name)
            was_ready = any(
                row["ready"] for row in assess({"name": name, "version": None, "config": None}, index)["rows"]
            )
            in_index = bool(_entries(index, name)[0])
            try:
                self.send("load", name, None if config is None else json.dumps(config, sort_keys=True))
            except TritonError as exc:
                raise _Failed(self.explain_request_error("load", name, exc, was_ready, in_index))
        index, dummy = self.wait_ready(
            self.models, "waiting for the models to be ready after loading", settled_is_final=True
        )
        self.set_diff(before, {m["name"]: _summary(m, index) for m in self.models})

    def run_unloaded(self, index):
        if index is None:
            index = self.wait_for_index("waiting for the server")
        before = {m["name"]: _summary(m, index) for m in self.models}
        names = []
        for model in self.models:
            rows = assess(model, index)["rows"]
            if model["name"] not in names and any(row["state"] in (READY, LOADING) for row in rows):
                names.append(model["name"])
        self.result["unloaded"] = names
        self.result["changed"] = bool(names)
        if self.module.check_mode:
            self.result["models"] = [row for a in self.assess_all(index) for row in a["rows"]]
            after = dict(before, **dict.fromkeys(names, "UNAVAILABLE: unloaded (after an unload request)"))
            self.set_diff(before, after)
            return
        for name in names:
            try:
                self.send("unload", name)
            except TritonError as exc:
                raise _Failed(self.explain_request_error("unload", name, exc))
        while True:
            index = self.poll_index()
            if index is not None:
                rows = [row for m in self.models for row in assess(m, index)["rows"]]
                self.result["models"] = rows
                busy = [row for row in rows if row["state"] in (READY, LOADING, UNLOADING)]
                if not busy:
                    break
            if self.remaining() <= 0:
                if index is None:
                    raise _Failed(self.timed_out("waiting for the models to unload"))
                raise _Failed(
                    "timed out after %s s waiting for the models to unload; still: %s"
                    % (self.timeout, "; ".join(_describe(row) for row in busy))
                )
            self.pause()
        self.set_diff(before, {m["name"]: _summary(m, index) for m in self.models})

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
        timeout={"type": "float", "default": 300.0},
        interval={"type": "float", "default": 0.1},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    runner = TritonModelReady(module)
    try:
        result = runner.run()
    except _Failed as exc:
        runner.fail(str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
