# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The index assessment and ModelWaiter that triton_model_ready and the model puller share.

Against scripted index answers (no server); the model puller as installed, beside the module_utils files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.oceanid.fleet.plugins.module_utils import triton, triton_readiness
from ansible_collections.oceanid.fleet.plugins.module_utils.triton import TritonUnreachable


def test_uses_the_clients_error_and_states():
    """One TritonError class: a readiness failure is caught by the callers' ``except TritonError``."""
    assert triton_readiness.TritonError is triton.TritonError
    assert triton_readiness.READY == triton.READY == "READY"


def entry(name, version=None, state=None, reason=None):
    found = {"name": name}
    if version is not None:
        found.update(version=version, state=state)
    if reason:
        found["reason"] = reason
    return found


INDEX = [
    entry("ok", "1", "READY"),
    entry("ok", "2", "UNAVAILABLE", "unloaded"),
    entry("busy", "1", "LOADING"),
    entry("broken", "1", "UNAVAILABLE", "Internal: ModuleNotFoundError: No module named 'torch'"),
    entry("on_disk"),
    entry("gone", "1", "UNAVAILABLE", "unloaded"),
]


@pytest.mark.parametrize(
    "name, version, status, problem",
    [
        ("ok", None, "ready", None),
        ("ok", "1", "ready", None),
        ("ok", "2", "waiting", "ok version 2: UNAVAILABLE: unloaded"),
        ("ok", "3", "absent", "ok version 3: not in the repository index (versions listed: 1 READY, 2 UNAVAILABLE)"),
        ("busy", None, "waiting", "busy version 1: LOADING"),
        ("broken", None, "failed", "broken version 1: UNAVAILABLE: Internal: ModuleNotFoundError"),
        ("broken", "1", "failed", "broken version 1: UNAVAILABLE: Internal: ModuleNotFoundError"),
        ("on_disk", None, "waiting", "on_disk: present in the repository but not loaded"),
        ("on_disk", "1", "waiting", "on_disk version 1: not loaded"),
        ("missing", None, "absent", "missing: not in the repository index"),
        ("missing", "1", "absent", "missing version 1: not in the repository index"),
    ],
)
def test_assess(name, version, status, problem):
    assessment = triton_readiness.assess(triton_readiness.model_request(name, version), INDEX)
    assert assessment["status"] == status
    if problem is None:
        assert assessment["problems"] == []
    else:
        assert assessment["problems"][0].startswith(problem)
    assert all(set(row) == {"name", "version", "state", "reason", "ready"} for row in assessment["rows"])


def test_assess_strict_versions_and_all_models_in():
    index = INDEX + [entry("two", "1", "READY"), entry("two", "2", "LOADING")]
    assert triton_readiness.assess(triton_readiness.model_request("two"), index)["status"] == "ready"
    assert (
        triton_readiness.assess(triton_readiness.model_request("two"), index, strict_versions=True)["status"]
        == "waiting"
    )
    assert (
        triton_readiness.assess(triton_readiness.model_request("ok"), index, strict_versions=True)["status"] == "ready"
    )
    assert [m["name"] for m in triton_readiness.all_models_in(index)] == ["broken", "busy", "ok", "two"]
    assert triton_readiness.serving_rows("ok", index) == [
        {"name": "ok", "version": "1", "state": "READY", "reason": "", "ready": True}
    ]
    assert (
        triton_readiness.summary(triton_readiness.model_request("ok"), index)
        == "version 1 READY, version 2 UNAVAILABLE: unloaded"
    )
    assert triton_readiness.summary(triton_readiness.model_request("on_disk"), index) == "not loaded"


@pytest.mark.parametrize(
    "wanted, served, matches",
    [
        ({"max_batch_size": 8}, {"name": "m", "max_batch_size": 8}, True),
        ({"max_batch_size": 8}, {"max_batch_size": "8"}, True),
        ({"max_batch_size": 8}, {"max_batch_size": 16}, False),
        ({"instance_group": [{"count": 2}]}, {"instance_group": [{"count": 2, "kind": "KIND_CPU"}]}, True),
        ({"instance_group": [{"count": 2}]}, {"instance_group": [{"count": 2}, {"count": 1}]}, False),
        ({"dynamic_batching": {}}, {}, False),
        ({"flag": True}, {"flag": "true"}, True),
    ],
)
def test_config_matches(wanted, served, matches):
    assert triton_readiness.config_matches(wanted, served) is matches


class ScriptedClient:
    """A TritonClient stand-in: index() answers from a script (the last answer repeats)."""

    url = "http://triton.test:8000"

    def __init__(self, *indexes, unreachable=False):
        self.indexes = list(indexes)
        self.unreachable = unreachable
        self.polls = 0

    def live(self, timeout=None):
        if self.unreachable:
            raise TritonUnreachable("Connection refused")
        return True

    def index(self, timeout=None):
        self.polls += 1
        return self.indexes.pop(0) if len(self.indexes) > 1 else self.indexes[0]

    def model_ready(self, name, version=None, timeout=None):
        return True


@pytest.fixture
def short_grace(monkeypatch):
    monkeypatch.setattr(triton_readiness, "FAILURE_GRACE", 0.1)


def test_waiter_fails_fast_on_an_absent_model(short_grace):
    waiter = triton_readiness.ModelWaiter(ScriptedClient(INDEX), 30, interval=0.01, absent_hint=" (hint)")
    started = time.monotonic()
    with pytest.raises(triton_readiness.WaitFailed) as failed:
        waiter.wait_ready([triton_readiness.model_request("ok"), triton_readiness.model_request("missing")], "waiting")
    assert str(failed.value) == (
        "model not in the repository index on http://triton.test:8000: missing: not in the repository index (hint)"
    )
    assert time.monotonic() - started < 2
    assert waiter.rows[-1]["reason"] == "not in the repository index"


def test_waiter_waits_for_an_absent_model_when_told(short_grace):
    late = [entry("late", "1", "READY")]
    client = ScriptedClient(*([[]] * 30 + [late]))
    waiter = triton_readiness.ModelWaiter(client, 30, interval=0.01, absent_model="wait")
    index, models = waiter.wait_ready([triton_readiness.model_request("late", 1)], "waiting")
    assert index == late and models == [triton_readiness.model_request("late", "1")]
    assert client.polls == 31
    assert waiter.rows == [{"name": "late", "version": "1", "state": "READY", "reason": "", "ready": True}]


def test_waiter_after_a_load_a_missing_version_is_final(short_grace):
    waiter = triton_readiness.ModelWaiter(ScriptedClient(INDEX), 30, interval=0.01, absent_model="wait")
    with pytest.raises(triton_readiness.WaitFailed) as failed:
        waiter.wait_ready([triton_readiness.model_request("ok", 3)], "waiting", settled_is_final=True)
    assert str(failed.value).startswith("model will not become ready on http://triton.test:8000: ok version 3: ")


def test_waiter_a_failure_must_hold_for_the_grace(short_grace):
    failing = [entry("m", "1", "UNAVAILABLE", "Internal: stale")]
    client = ScriptedClient(failing, [entry("m", "1", "LOADING")], [entry("m", "1", "READY")])
    waiter = triton_readiness.ModelWaiter(client, 30, interval=0.01)
    waiter.wait_ready([triton_readiness.model_request("m")], "waiting")
    waiter = triton_readiness.ModelWaiter(ScriptedClient(failing), 30, interval=0.01)
    with pytest.raises(
        triton_readiness.WaitFailed, match="^model failed to load on .*: m version 1: UNAVAILABLE: Internal"
    ):
        waiter.wait_ready([triton_readiness.model_request("m")], "waiting")


def test_waiter_timeout_and_unreachable_server():
    waiter = triton_readiness.ModelWaiter(ScriptedClient([entry("m", "1", "LOADING")]), 0.2, interval=0.01)
    with pytest.raises(
        triton_readiness.WaitFailed, match=r"^timed out after 0.2 s waiting; not ready: m version 1: LOADING$"
    ):
        waiter.wait_ready([triton_readiness.model_request("m")], "waiting")
    waiter = triton_readiness.ModelWaiter(ScriptedClient([], unreachable=True), 0.2, interval=0.01)
    with pytest.raises(triton_readiness.WaitFailed) as failed:
        waiter.wait_ready([triton_readiness.model_request("m")], "waiting")
    assert str(failed.value) == (
        "timed out after 0.2 s waiting: server not reachable at http://triton.test:8000: Connection refused"
    )
    assert waiter.rows == [
        {"name": "m", "version": None, "state": None, "reason": "server not reachable", "ready": False}
    ]


def test_importable_standalone_as_the_puller_does(tmp_path):
    """The model puller imports triton.py and triton_readiness.py as plain modules beside it: no ansible import."""
    shutil.copy(triton.__file__, tmp_path / "triton.py")
    shutil.copy(triton_readiness.__file__, tmp_path / "triton_readiness.py")
    code = (
        "import sys; sys.path.insert(0, %r); import triton, triton_readiness; "
        % str(tmp_path)
        + "assert not [m for m in sys.modules if m.startswith('ansible')], sorted(sys.modules); "
        "assert triton_readiness.TritonError is triton.TritonError; "
        "print(triton_readiness.assess(triton_readiness.model_request('m'), "
        "[{'name': 'm', 'version': '1', 'state': 'READY'}])['status'])"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ready"


PULLER_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import model_puller, triton_readiness
triton_readiness.FAILURE_GRACE = 0.1


class Client:
    url = "http://triton.test:8000"

    def __init__(self, *indexes):
        self.indexes = list(indexes)

    def live(self, timeout=None):
        return True

    def index(self, timeout=None):
        return self.indexes.pop(0) if len(self.indexes) > 1 else self.indexes[0]

    def model_ready(self, name, version=None, timeout=None):
        return True


def check(explicit, *indexes):
    puller = model_puller.Puller.__new__(model_puller.Puller)
    puller.triton, puller.explicit, puller.ready_timeout = Client(*indexes), explicit, 5.0
    return puller.wait_for_version("m", 2)


v1 = [{"name": "m", "version": "1", "state": "READY"}]
v2 = v1 + [{"name": "m", "version": "2", "state": "READY"}]
bad = v1 + [{"name": "m", "version": "2", "state": "UNAVAILABLE", "reason": "Internal: bad"}]
print(check(True, v2))
print(check(True, v1))
print(check(True, bad, bad, bad))
print(check(False, *([v1] * 10 + [v2])))
"""


def test_the_puller_waits_with_the_shared_logic(tmp_path):
    """model_puller.py as installed (beside the module_utils files it imports), with a scripted client."""
    root = Path(__file__).resolve().parents[4]
    shutil.copy(root / "roles/model_puller/files/model_puller.py", tmp_path)
    role_vars = yaml.safe_load((root / "roles/model_puller/vars/main.yml").read_text())
    assert {"triton.py", "triton_readiness.py"} <= set(role_vars["_model_puller_libraries"])
    for name in role_vars["_model_puller_libraries"]:  # what the role installs beside the puller
        shutil.copy(root / "plugins/module_utils" / name, tmp_path)
    done = subprocess.run(
        [sys.executable, "-I", "-c", PULLER_CHECK, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    ready, absent, failed, appeared = done.stdout.splitlines()
    assert ready == "(True, '')"
    # explicit mode, after the load returned: a version Triton does not list will not come
    assert absent.startswith("(False, 'model will not become ready on http://triton.test:8000: m version 2: not in")
    assert failed == (
        "(False, 'model failed to load on http://triton.test:8000: m version 2: UNAVAILABLE: Internal: bad')"
    )
    assert appeared == "(True, '')"  # poll mode: waited until Triton listed it
