# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model puller on pm-gpu pulling from SeaweedFS on pm-s3 (molecule/model_puller), checked with pytest-testinfra.

Versions are published from the controller the way a training job would (s3_model_ingest's engine, model keys
puller-demo/<n>); Triton is asked from the controller through tritonclient. The tests run in file order, each
starting from the state the previous one left: v1 (published by prepare.yml) served by converge's own pass, an
unchanged converge running no pass, v2 rolled out by a timer tick under load, a broken v3 rejected and not retried,
a 256 MiB v4 killed mid-transfer and completed, and a converge whose pass fails failing with the status file's reason.
"""

from __future__ import annotations

import pytest
import tritonclient.http as triton_http
from puller_lab import (
    KEY,
    MODEL,
    PUBLISHED_BY_PREPARE,
    REPO,
    SERVICE,
    STATUS,
    TIMER,
    InferenceLoop,
    converge_with,
    infer,
    journal,
    passes,
    publish,
    recap,
    record,
    status,
    timer_silenced,
    versions_on_disk,
    wait_for,
    wait_idle,
    write_version,
)

testinfra_hosts = ["pm-gpu"]

BLOB_BYTES = 256 << 20


@pytest.fixture(name="lab_vars", scope="module")
def fixture_lab_vars(host):
    return host.backend.get_variables()


@pytest.fixture(name="s3_address", scope="module")
def fixture_s3_address(host):
    return host.backend.ansible_runner.get_variables("pm-s3")["ansible_host"]


@pytest.fixture(name="triton_url", scope="module")
def fixture_triton_url(lab_vars):
    return f"{lab_vars['ansible_host']}:8000"


@pytest.fixture(name="triton", scope="module")
def fixture_triton(triton_url):
    client = triton_http.InferenceServerClient(url=triton_url, network_timeout=30.0)
    yield client
    client.close()


@pytest.fixture(name="versions", scope="module")
def fixture_versions(tmp_path_factory):
    return tmp_path_factory.mktemp("versions")


def epoch(host, timestamp: str) -> int:
    return int(host.check_output("date -d %s +%%s", timestamp))


def test_converge_ran_the_pass_that_serves_v1_before_any_timer_tick(host, triton):
    timer_unit = host.file(f"/etc/systemd/system/{TIMER}").content_string
    assert "OnActiveSec=1h" in timer_unit and "OnBootSec=1h" in timer_unit  # converge.yml's first_run_delay
    runs = list(passes(host).values())
    assert runs, "the puller never ran"
    first_at, first_lines = runs[0]
    # The timer's first tick is an hour after it started (or after the host booted); OnUnitInactiveSec needs a pass
    # that already ended. So the first pass, before that hour, is the one converge started (first_pass.yml).
    started = epoch(host, host.check_output("systemctl show --property=ActiveEnterTimestamp --value %s", TIMER))
    booted = epoch(host, host.check_output("systemctl show --property=UserspaceTimestamp --value") or "now")
    assert first_at < (min(started, booted) + 3600) * 1_000_000
    assert f"serving model={MODEL} version={PUBLISHED_BY_PREPARE}" in first_lines, first_lines
    assert triton.is_model_ready(MODEL, str(PUBLISHED_BY_PREPARE))
    assert infer(triton, 3.0) == (3.0, "1")
    assert record(host)["serving_version"] == 1 and status(host)["ok"] is True
    assert versions_on_disk(host) == ["1"]


def test_a_converge_with_nothing_changed_runs_no_pass(request, tmp_path, host):
    with timer_silenced(host):
        before = host.file(STATUS).content_string, set(passes(host))
        output = converge_with(request, tmp_path, {})
        after = host.file(STATUS).content_string, set(passes(host))
    assert " changed=0 " in recap(output, "pm-gpu"), output[-3000:]
    first_pass_task = output.split("Run one pull pass now")[1].split("TASK [")[0]
    assert "changed: [pm-gpu]" not in first_pass_task and "ok: [pm-gpu]" not in first_pass_task, first_pass_task
    assert after == before  # the same last_check, and no new pass in the journal


def test_v2_is_rolled_out_by_a_timer_tick_with_no_failed_inference(host, lab_vars, s3_address, triton_url, versions):
    loop = InferenceLoop(triton_url)
    loop.start()
    try:
        wait_for("the inference loop's first answer", lambda: loop.outputs or loop.failures, timeout=30)
        publish(lab_vars, s3_address, write_version(versions / "2", "2"), f"{KEY}/2")
        wait_for("a timer tick serving v2", lambda: record(host).get("serving_version") == 2)
        wait_for("inferences on v2", lambda: loop.outputs[-1:] == [2.0], timeout=30)
        sent_on_v2 = loop.sent
        wait_for("more inferences on v2", lambda: loop.sent > sent_on_v2 + 50, timeout=30)
    finally:
        report = loop.report()
    assert report["failures"] == [], report
    assert report["outputs"] == [1.0, 2.0], report
    assert report["sent"] > 50, report


def test_a_broken_v3_is_rejected_and_v2_keeps_serving(host, lab_vars, s3_address, triton, versions):
    publish(lab_vars, s3_address, write_version(versions / "3", "oops"), f"{KEY}/3")
    wait_for("a timer tick rejecting v3", lambda: "3" in record(host)["bad_versions"])
    state = record(host)
    assert infer(triton, 3.0) == (6.0, "2")
    assert versions_on_disk(host) == ["1", "2"]
    assert state["serving_version"] == 2, state
    assert "could not convert string to float" in state["bad_versions"]["3"]["reason"], state
    assert "could not convert string to float" in state["last_error"], state
    assert "version failed to load; previous version keeps serving" in journal(host)


def test_the_known_bad_v3_is_not_retried_on_the_next_tick(host, triton):
    wait_for("another tick", lambda: "newest version is known bad; not retried" in journal(host))
    assert versions_on_disk(host) == ["1", "2"]
    assert infer(triton, 3.0) == (6.0, "2")


def test_a_pass_killed_mid_transfer_leaves_nothing_and_the_next_fetches_only_the_rest(
    host, lab_vars, s3_address, triton, versions
):
    host.check_output("systemctl stop %s", TIMER)
    try:
        wait_idle(host)
        publish(lab_vars, s3_address, write_version(versions / "4", "4", BLOB_BYTES), f"{KEY}/4")
        host.check_output("systemctl start --no-block %s", SERVICE)
        # Checked on the host every 20 ms: version 4 never in the repository; SIGKILL once 64 MiB have been written.
        killed = host.run(
            "for i in $(seq 1500); do"
            "  [ -d %s/4 ] && { echo 'version 4 visible during the transfer'; exit 1; };"
            "  pid=$(pgrep -f '^/usr/bin/python3 /opt/oceanid/model-puller/model_puller.py' | head -1);"
            "  written=$(awk '/^wchar/ {print $2}' /proc/${pid:-0}/io 2>/dev/null || echo 0);"
            '  if [ -n "$pid" ] && [ "${written:-0}" -gt 67108864 ]; then'
            '    kill -KILL "$pid"; sleep 1;'
            "    [ -d %s/4 ] && { echo 'version 4 visible after the kill'; exit 1; };"
            '    echo "$written"; exit 0;'
            "  fi;"
            "  sleep 0.02;"
            "done; echo 'the transfer was never seen'; exit 1",
            REPO,
            REPO,
        )
        assert killed.rc == 0, killed.stdout + killed.stderr
        assert "4" not in versions_on_disk(host)
        wait_idle(host)
        host.check_output("systemctl start %s", SERVICE)  # one pass to the end
    finally:
        host.check_output("systemctl start %s", TIMER)
    hydrated = [line for line in journal(host).splitlines() if line.startswith("hydrated ") and "version=4" in line]
    fetched = int(hydrated[-1].split("bytes=")[1].split()[0])
    assert 0 < fetched < BLOB_BYTES, hydrated[-1]
    assert record(host)["serving_version"] == 4
    assert versions_on_disk(host) == ["2", "4"]  # keep: 2
    assert infer(triton, 3.0) == (12.0, "4")


def test_a_converge_whose_pass_fails_fails_with_the_status_files_reason(
    request, tmp_path, host, lab_vars, s3_address, triton, versions
):
    # A configuration whose newest version Triton cannot load: model key puller-broken, whose only version (9) is bad.
    publish(lab_vars, s3_address, write_version(versions / "broken", "not-a-number"), "puller-broken/9")
    bad = {"model_puller_models": [{"name": MODEL, "key": "puller-broken", "keep": 2}]}
    output = converge_with(request, tmp_path, bad, succeed=False, tags="model_puller")  # the puller's part only
    assert "pm-gpu: the model puller's pass failed" in output, output[-3000:]
    assert f"{MODEL}: serving version 4, last error version 9 failed to load" in output, output[-3000:]
    assert "could not convert string to float" in output, output[-3000:]
    assert infer(triton, 3.0) == (12.0, "4")  # the version that served before keeps serving
    assert versions_on_disk(host) == ["2", "4"]

    # Back to the scenario's configuration: converge succeeds, its pass runs (the configuration changed) and is clean.
    restored = converge_with(request, tmp_path, {}, tags="model_puller")
    assert " changed=2 " in recap(restored, "pm-gpu"), restored[-3000:]  # the configuration, and the pass
    assert "changed: [pm-gpu]" in restored.split("Run one pull pass now")[1].split("TASK [")[0]
    wait_idle(host)
    assert status(host)["ok"] is True and record(host)["serving_version"] == 4 and record(host)["last_error"] is None
    assert infer(triton, 3.0) == (12.0, "4")


def test_a_model_with_nothing_published_yet_does_not_fail_the_converge(request, tmp_path, host, triton):
    # A pipeline that has not published yet: the pass finds no version for this key. The run says so and succeeds;
    # the timer pulls the first version when it appears. The other model keeps serving.
    waiting = {
        "model_puller_models": [
            {"name": MODEL, "key": "puller-demo", "keep": 2},
            {"name": "not_yet_published", "key": "not-yet-published", "keep": 2},
        ]
    }
    output = converge_with(request, tmp_path, waiting, tags="model_puller")
    assert "no version published yet for not_yet_published" in output, output[-3000:]
    assert "the model puller's pass failed" not in output
    assert infer(triton, 3.0) == (12.0, "4")

    restored = converge_with(request, tmp_path, {}, tags="model_puller")
    assert "failed=0" in recap(restored, "pm-gpu"), restored[-3000:]
    wait_idle(host)
    assert status(host)["ok"] is True and record(host)["serving_version"] == 4
