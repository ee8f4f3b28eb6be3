# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the oceanid.fleet.drift_guard callback, fed with real TaskResult objects."""

from __future__ import annotations

import pytest
from ansible.plugins.loader import callback_loader

from ansible_collections.oceanid.fleet.plugins.callback import drift_guard

PLUGIN = "oceanid.fleet.drift_guard"


@pytest.fixture
def make_plugin(recording_display, monkeypatch):
    """Load the callback the way ansible-core does, with its options from DOCUMENTATION."""

    def _make(mode: str | None = None, env_mode: str | None = None):
        monkeypatch.delenv("OCEANID_DRIFT_GUARD", raising=False)
        if env_mode is not None:
            monkeypatch.setenv("OCEANID_DRIFT_GUARD", env_mode)
        plugin = callback_loader.get(PLUGIN)
        assert plugin is not None, f"{PLUGIN} did not load"
        plugin._display = recording_display  # pylint: disable=protected-access
        plugin.set_options(direct={"mode": mode} if mode else None)
        return plugin

    return _make


def _run(plugin, results, stats, playbooks=1):
    """Feed the events of a run (one playbook start per playbook) and end it with the stats."""
    for _playbook in range(playbooks):
        plugin.v2_playbook_on_start(playbook=None)
    for result in results:
        plugin.v2_runner_on_ok(result)
    plugin.v2_playbook_on_stats(stats)


def test_loads_as_aggregate_callback_that_needs_enabling():
    plugin_class = callback_loader.get(PLUGIN, class_only=True)
    assert plugin_class.CALLBACK_TYPE == "aggregate"
    assert plugin_class.CALLBACK_NEEDS_ENABLED is True


def test_default_mode_is_check_only(make_plugin):
    assert make_plugin().mode == "check_only"


def test_mode_from_environment(make_plugin):
    assert make_plugin(env_mode="always").mode == "always"


@pytest.mark.parametrize(
    ("mode", "check", "active"),
    [
        ("check_only", True, True),
        ("check_only", False, False),
        ("always", True, True),
        ("always", False, True),
        ("off", True, False),
        ("off", False, False),
    ],
)
def test_active_per_mode(make_plugin, cliargs, mode, check, active):
    cliargs(check=check)
    assert make_plugin(mode).active is active


@pytest.mark.parametrize(
    ("mode", "check", "exit_code"),
    [
        ("check_only", True, drift_guard.DRIFT_EXIT_CODE),
        ("check_only", False, None),
        ("always", False, drift_guard.DRIFT_EXIT_CODE),
        ("always", True, drift_guard.DRIFT_EXIT_CODE),
        ("off", True, None),
    ],
)
def test_changes_fail_the_run_only_when_active(
    make_plugin, cliargs, make_result, make_stats, recording_display, mode, check, exit_code
):
    cliargs(check=check)
    plugin = make_plugin(mode)
    results = [make_result(check_mode=check)]

    if exit_code is None:
        _run(plugin, results, make_stats())
        assert not recording_display.errors
    else:
        with pytest.raises(SystemExit) as excinfo:
            _run(plugin, results, make_stats())
        assert excinfo.value.code == exit_code
        assert recording_display.errors == ["drift_guard: 1 task(s) reported changes:\n  node1: Write config"]


@pytest.mark.parametrize("mode", ["check_only", "always"])
def test_no_change_passes(make_plugin, cliargs, make_result, make_stats, recording_display, mode):
    cliargs(check=True)
    plugin = make_plugin(mode)
    _run(plugin, [make_result(changed=False), make_result(host="node2", changed=False)], make_stats())
    assert plugin.changes == []
    assert not recording_display.errors


def test_report_lists_every_change_with_role_and_handler(
    make_plugin, cliargs, make_result, make_stats, recording_display
):
    cliargs(check=True)
    plugin = make_plugin()
    results = [
        make_result(host="gpu1", task="Write k3s config", role="oceanid.fleet.k3s"),
        make_result(host="gpu1", task="Unchanged task", changed=False),
        make_result(host="gpu2", task="Write k3s config", role="oceanid.fleet.k3s"),
        make_result(host="gpu2", task="Restart k3s", role="oceanid.fleet.k3s", handler=True),
        make_result(host="gpu2", task="Refresh apt cache", check_mode=False),
    ]

    with pytest.raises(SystemExit):
        _run(plugin, results, make_stats())

    assert recording_display.errors == [
        "drift_guard: 4 task(s) reported changes:\n"
        "  gpu1: Write k3s config (oceanid.fleet.k3s)\n"
        "  gpu2: Write k3s config (oceanid.fleet.k3s)\n"
        "  gpu2: Restart k3s (oceanid.fleet.k3s) [handler]\n"
        "  gpu2: Refresh apt cache [ran outside check mode]"
    ]
    assert [change.check_mode for change in plugin.changes] == [True, True, True, False]
    assert [change.handler for change in plugin.changes] == [False, False, True, False]


def test_changed_loop_item_counts(make_plugin, cliargs, make_result, make_stats):
    cliargs(check=True)
    plugin = make_plugin()
    loop = {"results": [{"changed": False, "item": "a"}, {"changed": True, "item": "b"}]}
    result = make_result(extra=loop)
    del result._return_data["changed"]  # pylint: disable=protected-access
    with pytest.raises(SystemExit):
        _run(plugin, [result], make_stats())
    assert len(plugin.changes) == 1


@pytest.mark.parametrize("event", ["v2_runner_on_failed", "v2_runner_on_skipped", "v2_runner_on_unreachable"])
def test_failed_skipped_and_unreachable_results_are_not_drift(make_plugin, cliargs, make_result, make_stats, event):
    cliargs(check=True)
    plugin = make_plugin()
    plugin.v2_playbook_on_start(playbook=None)
    getattr(plugin, event)(make_result())
    plugin.v2_playbook_on_stats(make_stats())
    assert plugin.changes == []


@pytest.mark.parametrize("what", ["failures", "dark"])
def test_failed_run_keeps_its_exit_status_but_still_reports(
    make_plugin, cliargs, make_result, make_stats, recording_display, what
):
    cliargs(check=True)
    plugin = make_plugin()
    _run(plugin, [make_result()], make_stats({"node2": {what: 1}}))  # no SystemExit
    assert recording_display.errors[0].startswith("drift_guard: 1 task(s) reported changes:")


def test_verdict_waits_for_the_last_playbook(make_plugin, cliargs, make_result, make_stats, recording_display):
    cliargs(check=True, playbooks=("first.yml", "second.yml"))
    plugin = make_plugin()

    plugin.v2_playbook_on_start(playbook=None)
    plugin.v2_runner_on_ok(make_result(host="node1"))
    plugin.v2_playbook_on_stats(make_stats())
    assert not recording_display.errors

    plugin.v2_playbook_on_start(playbook=None)
    plugin.v2_runner_on_ok(make_result(host="node2"))
    with pytest.raises(SystemExit):
        plugin.v2_playbook_on_stats(make_stats())
    assert recording_display.errors[0].splitlines()[1:] == ["  node1: Write config", "  node2: Write config"]


def test_off_records_nothing(make_plugin, cliargs, make_result):
    cliargs(check=True)
    plugin = make_plugin("off")
    plugin.v2_runner_on_ok(make_result())
    assert plugin.changes == []


@pytest.mark.parametrize("bad", ["nope", "OFF", "true"])
def test_invalid_mode_stops_the_run_at_start(make_plugin, recording_display, bad):
    plugin = make_plugin(env_mode=bad)
    assert plugin.config_error
    with pytest.raises(SystemExit) as excinfo:
        plugin.v2_playbook_on_start(playbook=None)
    assert excinfo.value.code == drift_guard.CONFIG_ERROR_EXIT_CODE
    assert recording_display.errors[0].startswith("drift_guard: invalid configuration:")
    assert "check_only, always, off" in recording_display.errors[0]
