# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.triton_model_ready against a fake Triton (HTTP on loopback) that keeps model states.

The module runs in-process through main(), with its arguments given the way ansible gives them; what it
returns is read from its JSON output. The real-server cases are in tests/integration/triton.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import urllib.parse
from unittest import mock

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.oceanid.fleet.plugins.module_utils import triton_readiness
from ansible_collections.oceanid.fleet.plugins.modules import triton_model_ready

POLLING = "explicit model load / unload is not allowed if polling is enabled"


class FakeTriton:
    """Just enough of Triton's HTTP API: the index, model ready, config, load and unload.

    ``models[name] = {version: (state, reason)}``; a name with ``{}`` is on disk but never loaded; a name
    missing is not in the repository. ``script`` (a list of index lists) answers the next index polls
    first. ``load_errors[name] = (status, message)`` fails loads; a successful load makes the versions
    in ``on_disk[name]`` (default ["1"]) READY. Every request is recorded in ``requests``.
    """

    def __init__(self, port: int = 0, start: bool = True):
        self.models: dict[str, dict[str, tuple[str, str]]] = {}
        self.on_disk: dict[str, list[str]] = {}
        self.configs: dict[str, dict] = {}
        self.load_errors: dict[str, tuple[int, str]] = {}
        self.script: list[list[dict]] = []
        self.index_status: tuple[int, dict] | None = None
        self.live_answers: list[int] = []
        self.ready_status: dict[str, int] = {}
        self.unload_polls = 0  # how many index polls a model stays UNLOADING after unload
        self._unloading: dict[str, int] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.port = port
        self.httpd = None
        if start:
            self.start()

    # -- state --------------------------------------------------------------------------------------

    def index(self) -> list[dict]:
        if self.script:
            return self.script.pop(0)
        for name in list(self._unloading):
            self._unloading[name] -= 1
            if self._unloading[name] < 0:
                del self._unloading[name]
                self.models[name] = dict.fromkeys(self.models[name], ("UNAVAILABLE", "unloaded"))
        entries = []
        for name in sorted(self.models):
            if not self.models[name]:
                entries.append({"name": name})
            for version, (state, reason) in sorted(self.models[name].items()):
                entry = {"name": name, "version": version, "state": state}
                if reason:
                    entry["reason"] = reason
                entries.append(entry)
        return entries

    def answer(self, method: str, path: str, body) -> tuple[int, object]:
        if method == "GET" and path == "/v2/health/live":
            return (self.live_answers.pop(0) if self.live_answers else 200), None
        if method == "POST" and path == "/v2/repository/index":
            if self.index_status:
                return self.index_status
            return 200, self.index()
        match = re.fullmatch(r"/v2/models/([^/]+)(?:/versions/([0-9]+))?/(ready|config)", path)
        if match and method == "GET":
            name, version, what = urllib.parse.unquote(match.group(1)), match.group(2), match.group(3)
            if what == "config":
                return (200, self.configs[name]) if name in self.configs else (400, {"error": "no config"})
            if name in self.ready_status:
                return self.ready_status[name], None
            states = self.models.get(name, {})
            ok = (
                states.get(version, ("", ""))[0] == "READY"
                if version
                else any(s == "READY" for s, _reason in states.values())
            )
            return (200, None) if ok else (400, {"error": "Model version not ready"})
        match = re.fullmatch(r"/v2/repository/models/([^/]+)/(load|unload)", path)
        if match and method == "POST":
            name, action = urllib.parse.unquote(match.group(1)), match.group(2)
            if name in self.load_errors:
                return self.load_errors[name][0], {"error": self.load_errors[name][1]}
            if action == "load":
                if name not in self.models:
                    return 500, {"error": "failed to load '%s', failed to poll from model repository" % name}
                self.models[name] = dict.fromkeys(self.on_disk.get(name, ["1"]), ("READY", ""))
            elif self.models.get(name):
                self.models[name] = dict.fromkeys(self.models[name], ("UNLOADING", ""))
                self._unloading[name] = self.unload_polls
            return 200, None
        return 404, {"error": "Not Found"}

    # -- server -------------------------------------------------------------------------------------

    def start(self) -> FakeTriton:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake.lock:
                    fake.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "body": body,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                    status, payload = fake.answer(self.command, self.path, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def sent(self, action: str) -> list[str]:
        """Model names of the load/unload requests received."""
        return [
            urllib.parse.unquote(r["path"].split("/")[-2])
            for r in self.requests
            if r["method"] == "POST" and r["path"].endswith("/" + action)
        ]


@pytest.fixture
def triton():
    fake = FakeTriton()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def short_grace(monkeypatch):
    monkeypatch.setattr(triton_readiness, "FAILURE_GRACE", 0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_module(capsys, check_mode=False, diff=False, **args):
    """Run the module's main() with these arguments; return (failed, result)."""
    args = dict(args)
    args.setdefault("interval", 0.01)
    args["_ansible_check_mode"] = check_mode
    args["_ansible_diff"] = diff
    # In a controller process (pytest with ansible's collection loader) module warnings would go to the
    # display instead of into the result; run as on a target host.
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        pytest.raises(SystemExit) as exit_info,
    ):
        triton_model_ready.main()
    result = json.loads(capsys.readouterr().out)
    assert bool(result.get("failed")) == (exit_info.value.code != 0)
    return bool(result.get("failed")), result


def warnings_of(result) -> str:
    """The warnings of a result as text (their JSON form differs between ansible-core versions)."""
    return json.dumps(result.get("warnings", []))


# -- input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        ({"models": [3]}, "models[0]: expected a model name or a dictionary with 'name', got int 3"),
        ({"models": [{"version": 1}]}, "models[0]: expected a non-empty string 'name'"),
        ({"models": ["a", {"name": ""}]}, "models[1]: expected a non-empty string 'name'"),
        ({"models": [{"name": "m", "versoin": 1}]}, "models[0]: unknown key(s) versoin"),
        ({"models": [{"name": "m", "version": 0}]}, "version of model 'm' must be a positive integer, got 0"),
        ({"models": [{"name": "m", "version": "-1"}]}, "must be a positive integer, got '-1'"),
        ({"models": [{"name": "m", "version": "v2"}]}, "must be a positive integer, got 'v2'"),
        ({"models": [{"name": "m", "version": True}]}, "must be a positive integer, got True"),
        ({"models": [{"name": "m", "version": 1.5}]}, "must be a positive integer, got 1.5"),
        ({"models": [{"name": "m", "version": "\u00b2"}]}, "must be a positive integer, got '\u00b2'"),
        (
            {"state": "loaded", "models": [{"name": "m", "config": "{not json"}]},
            "config of model 'm' is not valid JSON",
        ),
        (
            {"state": "loaded", "models": [{"name": "m", "config": "[1]"}]},
            "must be a dictionary or a JSON object string",
        ),
        ({"models": [{"name": "m", "config": {"max_batch_size": 1}}]}, "only used with state=loaded"),
        ({"state": "unloaded", "models": [{"name": "m", "version": 1}]}, "Triton unloads whole models"),
        (
            {"state": "loaded", "models": [{"name": "m", "config": {"a": 1}}, {"name": "m", "config": {"a": 2}}]},
            "listed more than once with different config",
        ),
        ({"all_models": True, "models": ["m"]}, "either models or all_models=true"),
        ({"all_models": True, "state": "loaded"}, "all_models is only used with state=ready"),
        ({}, "models is empty: list the models to wait for"),
        ({"state": "unloaded"}, "models is empty: list the models to unload"),
        ({"models": ["m"], "url": "127.0.0.1:8000"}, "must start with http:// or https://"),
        ({"models": ["m"], "interval": 0}, "interval must be more than 0"),
        ({"models": ["m"], "timeout": -1}, "timeout must be 0 or more"),
        ({"models": ["m"], "headers": {"X-Key": "a\r\nb"}}, "line break"),
    ],
)
def test_bad_input_is_named(capsys, triton, args, message):
    args.setdefault("url", triton.url)
    failed, result = run_module(capsys, **args)
    assert failed
    assert message in result["msg"]
    assert not triton.requests


def test_models_are_normalised():
    models = triton_model_ready.normalise_models(
        ["a", {"name": "b", "version": 2}, {"name": "b", "version": "2"}, {"name": "c", "config": '{"x": 1}'}], "loaded"
    )
    assert models == [
        {"name": "a", "version": None, "config": None},
        {"name": "b", "version": "2", "config": None},
        {"name": "c", "version": None, "config": {"x": 1}},
    ]


# -- state=ready ----------------------------------------------------------------------------------------


def test_ready_models_return_at_once(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}, "b": {"1": ("READY", ""), "2": ("READY", "")}}
    failed, result = run_module(capsys, url=triton.url, models=["a", {"name": "b", "version": 2}])
    assert not failed and result["changed"] is False
    assert result["models"] == [
        {"name": "a", "version": "1", "state": "READY", "reason": "", "ready": True},
        {"name": "b", "version": "2", "state": "READY", "reason": "", "ready": True},
    ]
    assert result["waited"] < 1
    assert result["loaded"] == [] and result["unloaded"] == []
    paths = [r["path"] for r in triton.requests]
    assert paths == ["/v2/health/live", "/v2/repository/index", "/v2/models/a/ready", "/v2/models/b/versions/2/ready"]


def test_waits_through_loading(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.script = [[{"name": "a"}], [{"name": "a", "version": "1", "state": "LOADING"}]] * 3
    failed, result = run_module(capsys, url=triton.url, models=["a"])
    assert not failed
    assert len([r for r in triton.requests if r["path"] == "/v2/repository/index"]) == 7


def test_transient_failure_within_the_grace_is_not_fatal(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.script = [
        [{"name": "a", "version": "1", "state": "UNAVAILABLE", "reason": "Internal: stale"}],
        [{"name": "a", "version": "1", "state": "LOADING"}],
    ]
    failed, result = run_module(capsys, url=triton.url, models=["a"])
    assert not failed, result


def test_load_failure_fails_fast_with_tritons_reason(capsys, triton):
    reason = "Internal: ModuleNotFoundError: No module named 'torch'\n\nAt:\n  /models/a/1/model.py(1): <module>\n"
    triton.models = {"a": {"1": ("UNAVAILABLE", reason)}, "b": {"1": ("READY", "")}, "c": {}}
    failed, result = run_module(capsys, url=triton.url, models=["a", "b", "c"], timeout=30)
    assert failed
    assert result["msg"].startswith("model failed to load on %s: " % triton.url) or "failed to load" in result["msg"]
    assert "a version 1: UNAVAILABLE: " + reason in result["msg"]
    assert "c: present in the repository but not loaded" in result["msg"]
    assert "b" not in result["msg"].split(": ", 1)[1].split(";")[0] or "b:" not in result["msg"]
    assert 0.2 <= result["waited"] < 5
    assert {"name": "a", "version": "1", "state": "UNAVAILABLE", "reason": reason, "ready": False} in result["models"]


def test_timeout_lists_every_model_that_is_not_ready(capsys, triton):
    triton.models = {
        "a": {"1": ("READY", ""), "2": ("READY", "")},
        "b": {"1": ("LOADING", "")},
        "c": {},
        "d": {"1": ("UNAVAILABLE", "unloaded")},
    }
    failed, result = run_module(
        capsys,
        url=triton.url,
        timeout=0.3,
        absent_model="wait",  # the version and the model that are not in the index fail fast otherwise
        models=[{"name": "a", "version": 3}, "b", "c", "d", "missing"],
    )
    assert failed
    msg = result["msg"]
    assert msg.startswith("timed out after 0.3 s waiting for the models to be ready; not ready: ")
    assert "a version 3: not in the repository index (versions listed: 1 READY, 2 READY)" in msg
    assert "b version 1: LOADING" in msg
    assert "c: present in the repository but not loaded" in msg
    assert "d version 1: UNAVAILABLE: unloaded" in msg
    assert "missing: not in the repository index" in msg
    assert 0.3 <= result["waited"] < 2


def test_non_200_answers_are_not_yet_and_reported(capsys, triton):
    triton.index_status = (403, {"error": "This API is restricted, expecting header 'X-Key'"})
    failed, result = run_module(capsys, url=triton.url, models=["a"], timeout=0.2)
    assert failed
    assert "HTTP 403: This API is restricted, expecting header 'X-Key'" in result["msg"]
    assert result["models"][0]["reason"].startswith("no repository index")


def test_not_live_then_live(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.live_answers = [400, 400]
    failed, _result = run_module(capsys, url=triton.url, models=["a"])
    assert not failed
    assert [r["path"] for r in triton.requests][:3] == ["/v2/health/live"] * 3


def test_index_ready_is_confirmed_by_the_ready_endpoint(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.ready_status = {"a": 400}
    failed, result = run_module(capsys, url=triton.url, models=["a"], timeout=0.2)
    assert failed
    assert "a: READY in the repository index, but its ready endpoint does not answer 200" in result["msg"]


def test_connection_refused_until_the_server_starts(capsys):
    port = free_port()
    fake = FakeTriton(port=port, start=False)
    fake.models = {"a": {"1": ("READY", "")}}
    timer = threading.Timer(0.5, fake.start)
    timer.start()
    try:
        failed, result = run_module(capsys, url="http://127.0.0.1:%d" % port, models=["a"], timeout=10)
    finally:
        timer.join()
        fake.stop()
    assert not failed, result
    assert result["waited"] >= 0.5


def test_unreachable_timeout_message(capsys):
    url = "http://127.0.0.1:%d" % free_port()
    failed, result = run_module(capsys, url=url, models=["a"], timeout=0.2)
    assert failed
    assert result["msg"].startswith(
        "timed out after 0.2 s waiting for the models to be ready: server not reachable at %s: " % url
    )
    assert "refused" in result["msg"].lower()
    assert result["models"] == [
        {"name": "a", "version": None, "state": None, "reason": "server not reachable", "ready": False}
    ]


def test_headers_are_sent_and_not_logged(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    failed, result = run_module(
        capsys, url=triton.url, models=["a"], headers={"CF-Access-Client-Secret": "s3cr3t-v4lue"}
    )
    assert not failed
    assert all(r["headers"]["cf-access-client-secret"] == "s3cr3t-v4lue" for r in triton.requests)
    assert "s3cr3t-v4lue" not in json.dumps(result)


def test_a_model_not_in_the_index_fails_fast(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}, "c": {}}
    failed, result = run_module(capsys, url=triton.url, models=["a", "missing", {"name": "a", "version": 3}])
    assert failed
    assert result["msg"].startswith("models not in the repository index on %s: " % triton.url)
    assert "missing: not in the repository index" in result["msg"]
    assert "a version 3: not in the repository index (versions listed: 1 READY)" in result["msg"]
    assert "absent_model=wait" in result["msg"]
    assert 0.2 <= result["waited"] < 5  # the grace, not the 300 s default timeout
    assert result["changed"] is False
    assert {
        "name": "missing",
        "version": None,
        "state": None,
        "reason": "not in the repository index",
        "ready": False,
    } in result["models"]
    assert triton.sent("load") == []


def test_a_model_present_but_not_loaded_is_waited_for(capsys, triton):
    # on disk (a name-only entry): another client may load it, so the wait goes on
    triton.models = {"c": {}}
    failed, result = run_module(capsys, url=triton.url, models=["c"], timeout=0.5)
    assert failed
    assert result["msg"].startswith("timed out after 0.5 s waiting for the models to be ready; not ready: c: ")


def test_absent_model_wait_waits_for_the_model_to_appear(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.script = [[]] * 40 + [[{"name": "a", "version": "1", "state": "LOADING"}]]
    failed, result = run_module(capsys, url=triton.url, models=["a"], absent_model="wait", timeout=30)
    assert not failed, result
    assert result["models"] == [{"name": "a", "version": "1", "state": "READY", "reason": "", "ready": True}]
    assert result["waited"] >= 0.4  # 40 polls at 0.01 s without the model, past the 0.2 s grace


def test_absent_model_wait_is_only_for_state_ready(capsys, triton):
    failed, result = run_module(capsys, url=triton.url, models=["a"], state="loaded", absent_model="wait")
    assert failed
    assert result["msg"] == "absent_model=wait is only used with state=ready (state is loaded)"
    assert not triton.requests


def test_all_models(capsys, triton):
    triton.models = {
        "a": {"1": ("READY", "")},
        "never": {},
        "gone": {"1": ("UNAVAILABLE", "unloaded")},
        "b": {"1": ("UNAVAILABLE", "unloaded"), "2": ("READY", "")},
    }
    triton.script = [[{"name": "a", "version": "1", "state": "LOADING"}]]
    failed, result = run_module(capsys, url=triton.url, all_models=True)
    assert not failed
    assert sorted({row["name"] for row in result["models"]}) == ["a", "b"]


def test_all_models_fails_on_any_failed_version(capsys, triton):
    triton.models = {"a": {"1": ("READY", ""), "2": ("UNAVAILABLE", "Internal: bad")}}
    failed, result = run_module(capsys, url=triton.url, all_models=True)
    assert failed
    assert "a version 2: UNAVAILABLE: Internal: bad" in result["msg"]


def test_all_models_with_nothing_loaded_warns(capsys, triton):
    triton.models = {"never": {}}
    failed, result = run_module(capsys, url=triton.url, all_models=True)
    assert not failed
    assert result["models"] == []
    assert "lists no loaded model" in warnings_of(result)


# -- state=loaded -----------------------------------------------------------------------------------------


def test_load_then_nothing_to_do(capsys, triton):
    triton.models = {"a": {}, "b": {"1": ("READY", "")}, "c": {"1": ("UNAVAILABLE", "unloaded")}}
    failed, result = run_module(capsys, diff=True, url=triton.url, state="loaded", models=["a", "b", "c"])
    assert not failed and result["changed"] is True
    assert result["loaded"] == ["a", "c"]
    assert triton.sent("load") == ["a", "c"]
    assert result["diff"]["before"] == {
        "a": "not loaded",
        "b": "version 1 READY",
        "c": "version 1 UNAVAILABLE: unloaded",
    }
    assert result["diff"]["after"] == {"a": "version 1 READY", "b": "version 1 READY", "c": "version 1 READY"}
    assert all(row["ready"] for row in result["models"])

    failed, result = run_module(capsys, url=triton.url, state="loaded", models=["a", "b", "c"])
    assert not failed and result["changed"] is False and result["loaded"] == []
    assert triton.sent("load") == ["a", "c"]


def test_load_sends_the_config_override_and_compares_it(capsys, triton):
    triton.models = {"a": {}}
    override = {"max_batch_size": 8, "instance_group": [{"kind": "KIND_CPU", "count": 2}]}
    failed, result = run_module(capsys, url=triton.url, state="loaded", models=[{"name": "a", "config": override}])
    assert not failed and result["changed"]
    load = [r for r in triton.requests if r["path"].endswith("/load")][0]
    assert json.loads(load["body"]["parameters"]["config"]) == override

    # Served config (auto-completed, numbers as Triton writes them) matches: nothing sent.
    triton.configs["a"] = {
        "name": "a",
        "max_batch_size": 8,
        "instance_group": [{"name": "a_0", "kind": "KIND_CPU", "count": 2, "gpus": []}],
    }
    failed, result = run_module(
        capsys, url=triton.url, state="loaded", models=[{"name": "a", "config": json.dumps(override)}]
    )
    assert not failed and not result["changed"]
    assert triton.sent("load") == ["a"]

    # A different value: loaded again.
    override["max_batch_size"] = 16
    failed, result = run_module(capsys, url=triton.url, state="loaded", models=[{"name": "a", "config": override}])
    assert not failed and result["changed"]
    assert triton.sent("load") == ["a", "a"]


def test_reload_sends_load_for_ready_models(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    failed, result = run_module(capsys, url=triton.url, state="loaded", reload=True, models=["a"])
    assert not failed and result["changed"] and result["loaded"] == ["a"]
    assert triton.sent("load") == ["a"]


def test_failed_load_quotes_triton(capsys, triton):
    error = "load failed for model 'a': version 1 is at UNAVAILABLE state: Internal: SyntaxError: bad;\n"
    triton.models = {"a": {}}
    triton.load_errors = {"a": (400, error)}
    failed, result = run_module(capsys, url=triton.url, state="loaded", models=["a"])
    assert failed
    assert result["msg"] == "load of model 'a' failed on %s: HTTP 400: %s" % (triton.url, error)
    assert result["loaded"] == ["a"]
    assert result["changed"] is False


def test_failed_reload_says_the_old_version_keeps_serving(capsys, triton):
    error = "load failed for model 'a': version 1 is at UNAVAILABLE state: Internal: SyntaxError: bad;\n"
    triton.models = {"a": {"1": ("READY", "")}}
    triton.load_errors = {"a": (400, error)}
    failed, result = run_module(capsys, url=triton.url, state="loaded", reload=True, models=["a"])
    assert failed
    assert error in result["msg"]
    assert result["msg"].endswith("; the previously loaded version keeps serving (version 1 READY)")


def test_load_in_none_mode_explains_the_model_control_mode(capsys, triton):
    triton.models = {"a": {}}
    triton.load_errors = {"a": (503, POLLING)}
    failed, result = run_module(capsys, url=triton.url, state="loaded", models=["a"])
    assert failed
    assert "not in explicit model-control mode" in result["msg"]
    assert "--model-control-mode=explicit" in result["msg"]
    assert POLLING in result["msg"]


def test_load_of_a_model_not_in_the_repository(capsys, triton):
    # Checked against the index first (issue 13): no load request, nothing changed.
    triton.models = {"a": {"1": ("READY", "")}}
    failed, result = run_module(capsys, url=triton.url, state="loaded", models=["a", "nothere"])
    assert failed
    assert result["msg"].startswith("nothing loaded on %s: nothere: not in the repository index" % triton.url)
    assert "is there a directory 'nothere' in the model repository?" in result["msg"]
    assert triton.sent("load") == []
    assert result["changed"] is False and result["loaded"] == []


def test_load_of_a_directory_triton_cannot_read(capsys, triton):
    triton.models = {"badcfg": {}}
    triton.load_errors = {"badcfg": (500, "failed to load 'badcfg', failed to poll from model repository")}
    failed, result = run_module(capsys, url=triton.url, state="loaded", models=["badcfg"])
    assert failed
    assert "HTTP 500: failed to load 'badcfg', failed to poll from model repository" in result["msg"]
    assert "the directory is there but Triton could not read it" in result["msg"]


def test_loaded_version_that_does_not_appear_fails_without_waiting(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.on_disk = {"a": ["1"]}
    failed, result = run_module(
        capsys, url=triton.url, state="loaded", models=[{"name": "a", "version": 2}], timeout=30
    )
    assert failed
    assert "a version 2: not in the repository index (versions listed: 1 READY)" in result["msg"]
    assert result["waited"] < 5
    # issue 13: the serving model is not reloaded first; nothing is sent and nothing changed
    assert result["msg"].startswith("nothing loaded on %s: " % triton.url)
    assert "reload=true sends it" in result["msg"]
    assert triton.sent("load") == []
    assert result["changed"] is False and result["loaded"] == []
    assert result["models"] == [
        {
            "name": "a",
            "version": "2",
            "state": None,
            "reason": "not in the repository index (versions listed: 1 READY)",
            "ready": False,
        }
    ]
    # the same in check mode: a validation failure, no request
    failed, result = run_module(
        capsys, check_mode=True, url=triton.url, state="loaded", models=[{"name": "a", "version": 2}]
    )
    assert failed and result["changed"] is False
    assert triton.sent("load") == []


def test_reload_loads_a_version_just_added_to_the_directory(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.on_disk = {"a": ["1", "2"]}
    failed, result = run_module(
        capsys, url=triton.url, state="loaded", reload=True, models=[{"name": "a", "version": 2}]
    )
    assert not failed, result
    assert result["changed"] is True and triton.sent("load") == ["a"]
    assert result["models"] == [{"name": "a", "version": "2", "state": "READY", "reason": "", "ready": True}]


def test_reloaded_version_that_does_not_appear_fails_unchanged(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    failed, result = run_module(
        capsys, url=triton.url, state="loaded", reload=True, models=[{"name": "a", "version": 2}], timeout=30
    )
    assert failed
    assert result["msg"].startswith("model will not become ready on %s: a version 2: not in the" % triton.url)
    assert result["waited"] < 5
    assert result["changed"] is False and result["loaded"] == ["a"]  # the request that was sent


def test_a_failed_task_reports_no_change(capsys, triton):
    error = "load failed for model 'b': version 1 is at UNAVAILABLE state: Internal: bad"
    triton.models = {"a": {}, "b": {}}
    triton.load_errors = {"b": (400, error)}
    failed, result = run_module(capsys, url=triton.url, state="loaded", models=["a", "b"])
    assert failed
    assert result["changed"] is False
    assert result["loaded"] == ["a", "b"] and triton.sent("load") == ["a", "b"]  # a loaded, b refused
    assert isinstance(result["models"], list) and isinstance(result["waited"], float)
    assert result["unloaded"] == []


def test_check_mode_loaded_sends_nothing(capsys, triton):
    triton.models = {"a": {}, "b": {"1": ("READY", "")}}
    failed, result = run_module(capsys, check_mode=True, diff=True, url=triton.url, state="loaded", models=["a", "b"])
    assert not failed and result["changed"] and result["loaded"] == ["a"]
    assert triton.sent("load") == []
    assert result["diff"]["after"]["a"] == "READY (after a load request)"
    assert result["diff"]["before"]["a"] == "not loaded"


@pytest.mark.parametrize("state, changed", [("loaded", True), ("unloaded", True), ("ready", False)])
def test_check_mode_with_no_server_does_not_wait(capsys, state, changed):
    url = "http://127.0.0.1:%d" % free_port()
    failed, result = run_module(capsys, check_mode=True, url=url, state=state, models=["a"], timeout=60)
    assert not failed
    assert result["changed"] is changed
    assert result["waited"] < 5
    assert "not waiting for it" in warnings_of(result)


# -- state=unloaded ---------------------------------------------------------------------------------------


def test_unload_waits_for_unloading_then_nothing_to_do(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}, "b": {"1": ("UNAVAILABLE", "unloaded")}, "c": {}}
    triton.unload_polls = 3
    failed, result = run_module(capsys, diff=True, url=triton.url, state="unloaded", models=["a", "b", "c", "missing"])
    assert not failed and result["changed"] and result["unloaded"] == ["a"]
    assert triton.sent("unload") == ["a"]
    assert result["diff"]["before"]["a"] == "version 1 READY"
    assert result["diff"]["after"]["a"] == "version 1 UNAVAILABLE: unloaded"
    assert {"name": "a", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded", "ready": False} in result[
        "models"
    ]

    failed, result = run_module(capsys, url=triton.url, state="unloaded", models=["a", "b", "c", "missing"])
    assert not failed and not result["changed"]
    assert triton.sent("unload") == ["a"]


def test_check_mode_unloaded_sends_nothing(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    failed, result = run_module(capsys, check_mode=True, url=triton.url, state="unloaded", models=["a"])
    assert not failed and result["changed"] and result["unloaded"] == ["a"]
    assert triton.sent("unload") == []
    assert triton.models["a"] == {"1": ("READY", "")}


def test_unload_in_none_mode(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.load_errors = {"a": (503, POLLING)}
    failed, result = run_module(capsys, url=triton.url, state="unloaded", models=["a"])
    assert failed
    assert result["msg"].startswith(
        "cannot unload model 'a': the server at %s is not in explicit model-control mode" % triton.url
    )


def test_unload_timeout_names_what_is_still_busy(capsys, triton):
    triton.models = {"a": {"1": ("READY", "")}}
    triton.unload_polls = 1000
    failed, result = run_module(capsys, url=triton.url, state="unloaded", models=["a"], timeout=0.3)
    assert failed
    assert result["msg"] == "timed out after 0.3 s waiting for the models to unload; still: a version 1: UNLOADING"
