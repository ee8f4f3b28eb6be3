# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.triton_model_ready through ansible-playbook against one real tritonserver (explicit mode).

The server and its models are in conftest.py; each test uses its own models, so the order does not matter.
"""

from __future__ import annotations

import time

from tests.integration.triton.triton_helpers import BROKEN_PY, entries, infer, write_model

SECRET = "oceanid-test-secret-5f1c"


def reason_of(server, name: str) -> str:
    (entry,) = entries(server, name)
    assert entry["state"] == "UNAVAILABLE"
    return entry["reason"]


def test_ready_models_and_a_ready_version(triton, play):
    result = play(
        [
            {
                "url": triton.url,
                "models": ["add_one", {"name": "two_versions", "version": 2}],
                "headers": {"X-Oceanid-Token": SECRET},
            }
        ]
    )
    assert result.rc == 0
    step = result[0]
    assert not step.get("failed"), step
    assert step["changed"] is False
    assert step["models"] == [
        {"name": "add_one", "version": "1", "state": "READY", "reason": "", "ready": True},
        {"name": "two_versions", "version": "2", "state": "READY", "reason": "", "ready": True},
    ]
    assert step["waited"] < 1
    assert SECRET not in result.stdout  # headers are no_log
    assert infer(triton, "two_versions", 1.0, version="2") == 3.0


def test_a_version_that_is_not_there_fails(triton, play):
    before = triton.index()
    log_before = triton.log_path.read_text(errors="replace")
    result = play(
        [
            {"url": triton.url, "models": [{"name": "two_versions", "version": 3}]},
            {"url": triton.url, "models": [{"name": "two_versions", "version": 3}], "state": "loaded", "timeout": 60},
            {
                "url": triton.url,
                "models": [{"name": "two_versions", "version": 3}],
                "timeout": 1.5,
                "absent_model": "wait",
            },
        ]
    )
    waited, loaded, waited_on_request = result[0], result[1], result[2]
    assert waited["failed"] and loaded["failed"] and waited_on_request["failed"]
    expected = "two_versions version 3: not in the repository index (versions listed: 1 READY, 2 READY)"
    # state=ready (issue 13): not in the index, so it fails after the one-second grace, not the 300 s default
    assert waited["msg"].startswith("model not in the repository index on %s: %s" % (triton.url, expected))
    assert "absent_model=wait" in waited["msg"]
    assert 1.0 <= waited["waited"] < 5
    # state=loaded (issue 13): checked before any request; the serving versions are not reloaded
    assert loaded["msg"].startswith("nothing loaded on %s: %s" % (triton.url, expected))
    assert loaded["waited"] < 5
    assert loaded["changed"] is False and loaded["loaded"] == []
    assert triton.index() == before
    assert "two_versions" not in triton.log_path.read_text(errors="replace")[len(log_before) :]
    # asked to wait for it: the whole timeout
    assert waited_on_request["msg"].startswith("timed out after 1.5 s waiting for the models to be ready; not ready: ")
    assert expected in waited_on_request["msg"]
    assert 1.5 <= waited_on_request["waited"] < 3
    assert infer(triton, "two_versions", 1.0, version="2") == 3.0


def test_a_model_that_appears_is_waited_for_when_asked(triton, play):
    running = play.start([{"url": triton.url, "models": ["appears"], "absent_model": "wait", "timeout": 120}])
    time.sleep(3.0)  # ansible starts the module; it polls an index without the model, past the grace
    assert not entries(triton, "appears")
    write_model(triton.repository, "appears", add=5)
    status, body = triton.request("POST", "/v2/repository/models/appears/load", {})
    assert status == 200, body
    step = running.wait()[0]
    assert not step.get("failed"), step
    assert step["models"] == [{"name": "appears", "version": "1", "state": "READY", "reason": "", "ready": True}]
    assert step["waited"] >= 1.5
    assert infer(triton, "appears", 1.0) == 6.0


def test_a_broken_model_fails_fast_quoting_triton(triton, play):
    code_reason = reason_of(triton, "broken_code")
    backend_reason = reason_of(triton, "broken_backend")
    assert "ModuleNotFoundError: No module named 'oceanid_no_such_module'" in code_reason
    assert "oceanid_no_such_backend" in backend_reason
    result = play([{"url": triton.url, "models": ["add_one", "broken_code", "broken_backend"], "timeout": 120}])
    step = result[0]
    assert step["failed"]
    assert step["msg"].startswith("models failed to load on %s: " % triton.url)
    assert "broken_code version 1: UNAVAILABLE: " + code_reason in step["msg"]
    assert "broken_backend version 1: UNAVAILABLE: " + backend_reason in step["msg"]
    assert "add_one" not in step["msg"]
    assert 1.0 <= step["waited"] < 10  # the failure must hold for 1 s; far from the 120 s timeout


def test_all_models_names_every_failed_model(triton, play):
    step = play([{"url": triton.url, "all_models": True, "timeout": 120}])[0]
    assert step["failed"]
    assert "broken_code version 1: UNAVAILABLE: " in step["msg"]
    assert "broken_backend version 1: UNAVAILABLE: " in step["msg"]
    checked = {row["name"] for row in step["models"]}
    assert {"add_one", "two_versions", "broken_code", "broken_backend"} <= checked
    assert not {"lazy", "unparseable"} & checked  # never loaded: not part of all_models
    assert step["waited"] < 10


def test_a_missing_model_fails_fast_naming_it(triton, play):
    result = play(
        [
            {"url": triton.url, "models": ["add_one", "oceanid_missing", "lazy"]},
            {"url": triton.url, "models": ["add_one", "oceanid_missing", "lazy"], "timeout": 1, "absent_model": "wait"},
        ]
    )
    fast, waited = result.results
    assert fast["failed"]
    # issue 13: the default timeout is 300 s; an absent model fails after the one-second grace
    assert fast["msg"].startswith("models not in the repository index on %s: " % triton.url)
    assert 1.0 <= fast["waited"] < 5
    assert fast["changed"] is False
    for step in (fast, waited):
        assert "oceanid_missing: not in the repository index" in step["msg"]
        assert "lazy: present in the repository but not loaded" in step["msg"]
        assert {
            "name": "oceanid_missing",
            "version": None,
            "state": None,
            "reason": "not in the repository index",
            "ready": False,
        } in step["models"]
    assert waited["failed"]
    assert waited["msg"].startswith("timed out after 1.0 s waiting for the models to be ready; not ready: ")


def test_a_model_on_disk_but_not_loaded_is_waited_for(triton, play):
    # explicit mode: someone else may load it, so this is not "absent"
    step = play([{"url": triton.url, "models": ["lazy"], "timeout": 2}])[0]
    assert step["failed"]
    assert step["msg"].startswith("timed out after 2.0 s waiting for the models to be ready; not ready: lazy: ")
    assert step["waited"] >= 2


def test_unparseable_config_load_fails_quoting_triton(triton, play):
    step = play([{"url": triton.url, "models": ["unparseable"], "state": "loaded"}])[0]
    assert step["failed"]
    assert "HTTP 500: failed to load 'unparseable', failed to poll from model repository" in step["msg"]
    assert "Triton could not read it" in step["msg"]
    assert entries(triton, "unparseable") == [{"name": "unparseable"}]


def test_explicit_load_and_unload_are_idempotent(triton, play):
    assert entries(triton, "toggle") == [{"name": "toggle"}]
    args = {"url": triton.url, "models": ["toggle"]}
    result = play(
        [
            dict(args, state="loaded"),
            dict(args, state="loaded"),
            dict(args, state="unloaded"),
            dict(args, state="unloaded"),
        ],
        diff=True,
    )
    assert result.rc == 0, result.stdout[-2000:]
    load, load_again, unload, unload_again = result.results
    assert [step.get("failed", False) for step in result.results] == [False] * 4
    assert [step["changed"] for step in result.results] == [True, False, True, False]
    assert load["loaded"] == ["toggle"] and load_again["loaded"] == []
    assert load["models"] == [{"name": "toggle", "version": "1", "state": "READY", "reason": "", "ready": True}]
    assert load["diff"] == {"before": {"toggle": "not loaded"}, "after": {"toggle": "version 1 READY"}}
    assert unload["unloaded"] == ["toggle"] and unload_again["unloaded"] == []
    assert unload["models"] == [
        {"name": "toggle", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded", "ready": False}
    ]
    assert unload["diff"]["after"] == {"toggle": "version 1 UNAVAILABLE: unloaded"}
    assert entries(triton, "toggle") == [
        {"name": "toggle", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"}
    ]


def test_reload_after_a_file_change(triton, play):
    model = triton.repository / "reload_ok"
    assert infer(triton, "reload_ok", 1.0) == 2.0
    write_model(triton.repository, "reload_ok", add=10)
    args = {"url": triton.url, "models": ["reload_ok"], "state": "loaded"}
    result = play([args, dict(args, reload=True)])
    plain, reload = result.results
    assert not plain.get("failed") and plain["changed"] is False  # READY: no load without reload=true
    assert not reload.get("failed"), reload
    assert reload["changed"] is True and reload["loaded"] == ["reload_ok"]
    assert infer(triton, "reload_ok", 1.0) == 11.0
    assert (model / "1" / "model.py").is_file()


def test_a_failed_reload_keeps_the_old_version_serving(triton, play):
    assert infer(triton, "reload_bad", 1.0) == 2.0
    write_model(triton.repository, "reload_bad", code=BROKEN_PY)
    step = play([{"url": triton.url, "models": ["reload_bad"], "state": "loaded", "reload": True}])[0]
    assert step["failed"]
    assert step["msg"].startswith(
        "load of model 'reload_bad' failed on %s: HTTP 400: load failed for model "
        "'reload_bad': version 1 is at UNAVAILABLE state: Internal: ModuleNotFoundError: "
        "No module named 'oceanid_no_such_module'" % triton.url
    )
    assert step["msg"].endswith("; the previously loaded version keeps serving (version 1 READY)")
    # issue 13: a failed task reports no change; loaded names the request that was sent
    assert step["changed"] is False and step["loaded"] == ["reload_bad"]
    assert entries(triton, "reload_bad") == [{"name": "reload_bad", "version": "1", "state": "READY"}]
    assert infer(triton, "reload_bad", 1.0) == 2.0


def test_check_mode_changes_nothing(triton, play):
    before = triton.index()
    log_before = triton.log_path.read_text(errors="replace")
    result = play(
        [
            {"url": triton.url, "models": ["lazy"], "state": "loaded"},
            {"url": triton.url, "models": ["add_one"], "state": "unloaded"},
            {"url": triton.url, "models": ["add_one"], "state": "loaded"},
            {"url": triton.url, "models": ["add_one"]},
        ],
        check=True,
        diff=True,
    )
    load, unload, nothing, ready = result.results
    assert [step.get("failed", False) for step in result.results] == [False] * 4
    assert load["changed"] is True and load["loaded"] == ["lazy"]
    assert load["diff"] == {"before": {"lazy": "not loaded"}, "after": {"lazy": "READY (after a load request)"}}
    assert unload["changed"] is True and unload["unloaded"] == ["add_one"]
    assert unload["diff"]["before"] == {"add_one": "version 1 READY"}
    assert nothing["changed"] is False and ready["changed"] is False
    assert triton.index() == before
    log_after = triton.log_path.read_text(errors="replace")[len(log_before) :]
    assert "loading: lazy" not in log_after  # no load request reached the model manager
    assert "add_one" not in log_after  # nor an unload
    assert infer(triton, "add_one", 1.0) == 2.0
