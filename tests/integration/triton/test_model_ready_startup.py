# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""triton_model_ready and a server that is not there yet, then one in none model-control mode (the default)."""

from __future__ import annotations

import os
import time

import pytest

from tests.integration.triton.triton_helpers import infer, write_model
from tests.support import tritonserver


@pytest.fixture(scope="module")
def late_server(tmp_path_factory):
    """A none-mode server on free ports, not started: the first test starts it while the module waits."""
    if os.geteuid() != 0 or not tritonserver.available():
        pytest.skip("needs root and the tritonserver binary of the nvidia-pytriton wheel")
    root = tmp_path_factory.mktemp("late")
    write_model(root / "models", "add_one", add=1)
    server = tritonserver.TritonServer(root / "models", root / "work", model_control_mode="none")
    yield server
    server.stop()


def started(server: tritonserver.TritonServer) -> tritonserver.TritonServer:
    if server.process is None:
        server.start()
    return server


def test_connection_refused_until_the_server_starts(late_server, play):
    running = play.start([{"url": late_server.url, "models": ["add_one"], "timeout": 60}])
    # ansible-playbook needs about a second before the module runs; then it meets connection refused
    # for about two seconds more.
    time.sleep(3.0)
    assert late_server.get("/v2/health/live")[0] == 0  # nothing listens yet
    late_server.start()
    live_at = time.monotonic() - running.started
    result = running.wait()
    step = result[0]
    assert not step.get("failed"), step
    assert step["changed"] is False
    assert step["models"] == [{"name": "add_one", "version": "1", "state": "READY", "reason": "", "ready": True}]
    assert step["waited"] >= 2.0
    # the module returned soon after the server answered (a none-mode server is live once its models loaded)
    assert result.seconds - live_at < 3.0, (result.seconds, live_at)
    assert infer(late_server, "add_one", 1.0) == 2.0


def test_load_and_unload_need_explicit_mode(late_server, play):
    server = started(late_server)
    result = play(
        [
            {"url": server.url, "models": ["add_one"], "state": "loaded", "reload": True},
            {"url": server.url, "models": ["add_one"], "state": "unloaded"},
            {"url": server.url, "models": ["add_one"], "state": "loaded"},
        ]
    )
    reload, unload, loaded = result.results
    for step, action in ((reload, "load"), (unload, "unload")):
        assert step["failed"]
        assert step["msg"].startswith(
            "cannot %s model 'add_one': the server at %s is not in explicit model-control "
            "mode (start tritonserver with --model-control-mode=explicit). Triton: HTTP 503: "
            "explicit model load / unload is not allowed if polling is enabled" % (action, server.url)
        )
    # already READY and no reload asked: nothing to send, so none mode is fine
    assert not loaded.get("failed") and loaded["changed"] is False
