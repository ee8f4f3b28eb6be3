#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: triton_infer_check
short_description: Smoke-check a Triton server, its models and one inference per model through tritonclient
version_added: 0.1.0
description:
  - Checks an NVIDIA Triton Inference Server over its HTTP API (KServe v2) with C(tritonclient) and returns one
    smoke record per check, the format of M(oceanid.fleet.smoke_report); it never fails because a check failed.
  - C(triton live) and C(triton ready) are C(GET /v2/health/live) and C(GET /v2/health/ready).
  - C(model <name> READY), for each of O(models), reads the repository index (C(POST /v2/repository/index)) and
    is ok when a version of the model is READY, naming the versions; otherwise it quotes the index's state and
    Triton's reason, or says that the model is not in the index.
  - C(inference <name>) sends one request to the newest READY version. The inputs are built from the model's
    metadata (name, datatype, shape; every variable dimension is 1) and configuration (optional inputs are
    left out), with the values of O(samples) where given, else zeros, false or the text C(oceanid-smoke). Every
    output the metadata lists is asked for; the record names what was sent and a preview of what came back.
    O(samples) may name text that an output must contain.
  - A check that cannot run (the model is not READY, the server does not answer) is C(not run) with the reason.
  - Only reads and inference requests are sent; nothing on the server changes.
options:
  url:
    description:
      - Triton's HTTP endpoint, C(http://host:port) or C(https://host:port), as reached from where the module
        runs (no path prefix; tritonclient does not support one).
    type: str
    required: true
  host:
    description: The inventory host the server belongs to, written into each record's C(host).
    type: str
    default: ""
  layer:
    description: The records' C(layer).
    type: str
    default: serving
  models:
    description: The model names that must be READY, each checked with one inference.
    type: list
    elements: str
    default: []
  samples:
    description:
      - Per model name, C({inputs, expect}). C(inputs) maps input names to a value (a scalar, repeated to the
        input's shape, or a nested list of exactly its size). C(expect) maps output names to text that must occur
        in the output (its elements, decoded as UTF-8 and joined by spaces).
    type: dict
    default: {}
  headers:
    description: HTTP headers sent with every request (for example Cloudflare Access service token headers).
    type: dict
    default: {}
  timeout:
    description: Seconds for connecting and for each request (an inference included).
    type: float
    default: 60
requirements:
  - tritonclient[http] (with numpy and geventhttpclient) on the host the module runs on
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - The module only reads and sends inference requests, in check mode as in a normal run.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: The module never changes anything and always reports C(changed=false).
    support: full
notes:
  - Runs where it is executed; the smoke playbook runs it on the controller (C(delegate_to) C(localhost)), whose
    Python has tritonclient through requirements-dev.txt.
seealso:
  - module: oceanid.fleet.smoke_report
  - module: oceanid.fleet.triton_model_ready
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Check Triton on a GPU host from the controller, with a sample for one model
  oceanid.fleet.triton_infer_check:
    url: http://10.0.0.5:8000
    host: calypso
    models: [tiny_onnx_python, docling_granite_python]
    samples:
      tiny_onnx_python:
        inputs:
          x: [[1.0, 2.0, 3.0, 4.0]]
  delegate_to: localhost
  register: triton_smoke
"""

RETURN = r"""
records:
  description: One record per check, in the order above.
  returned: always
  type: list
  elements: dict
  sample:
    - layer: serving
      check: inference tiny_onnx_python
      host: calypso
      status: ok
      detail: "version 1: sent x FP32[1, 4]; got y FP32[1, 3] = [0.12, -0.5, 1.1]"
models:
  description: Per model name, the READY versions the index listed (empty when none).
  returned: always
  type: dict
  sample: {tiny_onnx_python: ["1"]}
"""

import traceback
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.oceanid.fleet.plugins.module_utils.smoke import (
    FAILED,
    NOT_RUN,
    NUMPY_DTYPES,
    OK,
    SmokeError,
    describe_output,
    expectation_problems,
    plan_inputs,
    record,
)

TRITONCLIENT_IMPORT_ERROR = None
try:
    import numpy as np
    import tritonclient.http as triton_http
except ImportError:  # pragma: no cover - reported by main()
    np = None
    triton_http = None
    TRITONCLIENT_IMPORT_ERROR = traceback.format_exc()


def _error(exc):
    message = exc.message() if callable(getattr(exc, "message", None)) else str(exc)
    return "%s: %s" % (type(exc).__name__, message or repr(exc))


def _version_key(version):
    return (0, int(version)) if str(version).isdigit() else (1, str(version))


class TritonSmoke:
    """The checks of one server; ``client`` is a tritonclient.http.InferenceServerClient (or a fake of it)."""

    def __init__(self, client, url, host, layer, models, samples, headers=None):
        self.client, self.url, self.host, self.layer = client, url, host, layer
        self.models, self.samples, self.headers = models, samples or {}, headers or {}
        self.records = []
        self.ready_versions = {}

    def add(self, check, status, detail):
        self.records.append(record(self.layer, check, self.host, status, detail))

    def run(self):
        live = self.health("live", self.client.is_server_live)
        if live:
            self.health("ready", self.client.is_server_ready)
        else:
            self.add("triton ready", NOT_RUN, "Triton did not answer /v2/health/live at %s" % self.url)
        index = None
        if live:
            try:
                index = self.client.get_model_repository_index(headers=self.headers)
            except Exception as exc:  # pylint: disable=broad-except  # any client or transport error is a finding
                index_error = "the repository index could not be read: %s" % _error(exc)
        else:
            index_error = "Triton did not answer at %s" % self.url
        for name in self.models:
            if index is None:
                self.add("model %s READY" % name, FAILED, index_error)
                self.ready_versions[name] = []
            else:
                self.model_ready(name, index)
        for name in self.models:
            if self.ready_versions.get(name):
                self.infer(name, max(self.ready_versions[name], key=_version_key))
            else:
                self.add("inference %s" % name, NOT_RUN, "the model is not READY (see: model %s READY)" % name)
        return self.records

    def health(self, what, call):
        check, path = "triton %s" % what, "%s/v2/health/%s" % (self.url, what)
        try:
            answer = call(headers=self.headers)
        except Exception as exc:  # pylint: disable=broad-except
            self.add(check, FAILED, "GET %s: no answer: %s" % (path, _error(exc)))
            return False
        if answer:
            self.add(check, OK, "GET %s: %s" % (path, what))
            return True
        why = " (with strict readiness: a model failed to load or is loading)" if what == "ready" else ""
        self.add(check, FAILED, "GET %s: not %s%s" % (path, what, why))
        return False

    def model_ready(self, name, index):
        entries = [entry for entry in index if entry.get("name") == name]
        ready = sorted((str(e.get("version")) for e in entries if e.get("state") == "READY"), key=_version_key)
        self.ready_versions[name] = ready
        check = "model %s READY" % name
        if ready:
            self.add(check, OK, "repository index: version %s READY" % ", ".join(ready))
        elif entries:
            states = "; ".join(
                "version %s %s%s"
                % (
                    entry.get("version") or "-",
                    entry.get("state") or "not loaded",
                    (": " + entry["reason"]) if entry.get("reason") else "",
                )
                for entry in entries
            )
            self.add(check, FAILED, "repository index: no READY version (%s)" % states)
        else:
            names = sorted({str(entry.get("name")) for entry in index})
            self.add(check, FAILED, "not in the repository index (it lists: %s)" % (", ".join(names) or "nothing"))

    def infer(self, name, version):
        check = "inference %s" % name
        sample = self.samples.get(name) or {}
        try:
            metadata = self.client.get_model_metadata(name, model_version=version, headers=self.headers)
            config = self.client.get_model_config(name, model_version=version, headers=self.headers)
            optional = [item["name"] for item in config.get("input", []) if item.get("optional")]
            plan = plan_inputs(name, metadata.get("inputs", []), sample.get("inputs"), optional=optional)
        except SmokeError as exc:
            self.add(check, FAILED, "version %s: %s" % (version, exc))
            return
        except Exception as exc:  # pylint: disable=broad-except
            self.add(check, FAILED, "version %s: metadata/config could not be read: %s" % (version, _error(exc)))
            return
        inputs = []
        for item in plan:
            tensor = triton_http.InferInput(item["name"], item["shape"], item["datatype"])
            if item["datatype"] == "BYTES":
                data = np.array(
                    [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in item["values"]], dtype=np.object_
                )
            else:
                data = np.array(item["values"], dtype=NUMPY_DTYPES[item["datatype"]])
            tensor.set_data_from_numpy(data.reshape(item["shape"]), binary_data=True)
            inputs.append(tensor)
        outputs_meta = metadata.get("outputs", [])
        wanted = [triton_http.InferRequestedOutput(item["name"], binary_data=True) for item in outputs_meta]
        sent = ", ".join("%s %s%s" % (item["name"], item["datatype"], item["shape"]) for item in plan) or "no input"
        try:
            result = self.client.infer(
                name, inputs, model_version=version, outputs=wanted or None, headers=self.headers
            )
        except Exception as exc:  # pylint: disable=broad-except
            self.add(check, FAILED, "version %s: sent %s; Triton refused: %s" % (version, sent, _error(exc)))
            return
        got, seen = [], {}
        for item in outputs_meta:
            value = result.as_numpy(item["name"])
            if value is None:
                got.append("%s missing" % item["name"])
                continue
            seen[item["name"]] = value.tolist()
            got.append(describe_output(item["name"], item["datatype"], value.shape, value.tolist()))
        problems = expectation_problems(sample.get("expect"), seen)
        missing = [line for line in got if line.endswith(" missing")]
        detail = "version %s: sent %s; got %s" % (version, sent, "; ".join(got) or "no output")
        if problems or missing:
            self.add(check, FAILED, "%s; %s" % (detail, "; ".join(problems + missing)))
        else:
            self.add(check, OK, detail)


def client_for(url, timeout):
    """A tritonclient HTTP client for ``url`` (http(s)://host:port)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SmokeError("url %r must look like http(s)://host[:port]" % url)
    if parsed.path not in ("", "/"):
        raise SmokeError("url %r has a path; tritonclient talks to host:port only" % url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return triton_http.InferenceServerClient(
        url="%s:%d" % (parsed.hostname, port),
        ssl=parsed.scheme == "https",
        connection_timeout=timeout,
        network_timeout=timeout,
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "host": {"type": "str", "default": ""},
            "layer": {"type": "str", "default": "serving"},
            "models": {"type": "list", "elements": "str", "default": []},
            "samples": {"type": "dict", "default": {}},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "timeout": {"type": "float", "default": 60.0},
        },
        supports_check_mode=True,
    )
    if TRITONCLIENT_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("tritonclient[http]"), exception=TRITONCLIENT_IMPORT_ERROR)
    params = module.params
    url = params["url"].rstrip("/")
    try:
        client = client_for(url, params["timeout"])
    except SmokeError as exc:
        module.fail_json(msg=str(exc))
    smoke = TritonSmoke(
        client, url, params["host"], params["layer"], params["models"], params["samples"], params["headers"]
    )
    try:
        records = smoke.run()
    finally:
        try:
            client.close()
        except Exception:  # pylint: disable=broad-except  # closing a failed connection may raise; nothing to do
            pass
    module.exit_json(changed=False, records=records, models=smoke.ready_versions)


if __name__ == "__main__":
    main()
