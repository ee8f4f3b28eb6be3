# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: drift_guard
type: aggregate
short_description: Fail the run when tasks report changes on a fleet that should be converged
version_added: 0.1.0
description:
  - Records every task result that reports C(changed), handlers included, with the host, the task
    name, the role and whether the task ran in check mode.
  - Failed, unreachable and skipped results are not counted as drift.
  - When the guard is active and anything changed, it prints one line per change, with the host, the task
    and its role, when the playbook ends, and makes C(ansible-playbook) exit with status C(2).
  - Use it for a check-mode pass after convergence (a converged fleet must report no change) and for
    scheduled drift detection, for example an AWX job template that runs the site playbook with C(--check).
  - If the run already failed on some host, the list is still printed, and the exit status stays the one
    C(ansible-playbook) chose.
  - When several playbooks are given on one command line, the verdict comes after the last one.
  - An invalid O(mode) stops the run before its first task, with exit status C(1), instead of silently
    leaving the guard out.
notes:
  - Callbacks cannot fail a run by raising an exception, ansible-core turns that into a warning.
    This plugin ends the process with C(SystemExit) instead, after the stdout callback has printed its recap.
  - Other aggregate callbacks enabled after this one do not get their end-of-playbook event when drift is
    found, so list this callback last in O(ignore:callbacks_enabled).
requirements:
  - Enable it in configuration, for example C(callbacks_enabled = oceanid.fleet.drift_guard)
    in the C([defaults]) section of C(ansible.cfg), or C(ANSIBLE_CALLBACKS_ENABLED=oceanid.fleet.drift_guard).
options:
  mode:
    description:
      - When the guard is active.
    type: str
    default: check_only
    choices:
      check_only: Active only when the playbook runs in check mode (C(--check)).
      always: Active on every run, for example to assert that a second converge changes nothing.
      'off': Never active; nothing is recorded or reported.
    env:
      - name: OCEANID_DRIFT_GUARD
    ini:
      - section: callback_drift_guard
        key: mode
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = oceanid.fleet.drift_guard
#
# [callback_drift_guard]
# mode = check_only

# Check that a converged fleet reports no change; exits 2 and lists the tasks if it does:
#   ANSIBLE_CALLBACKS_ENABLED=oceanid.fleet.drift_guard ansible-playbook site.yml --check

# Assert that a second real run changes nothing:
#   OCEANID_DRIFT_GUARD=always ANSIBLE_CALLBACKS_ENABLED=oceanid.fleet.drift_guard ansible-playbook site.yml
"""

import dataclasses

from ansible import context
from ansible.errors import AnsibleOptionsError
from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

# Like `terraform plan -detailed-exitcode`: 2 means "changes present".
DRIFT_EXIT_CODE = 2
CONFIG_ERROR_EXIT_CODE = 1
MODES = ("check_only", "always", "off")


@dataclasses.dataclass(frozen=True)
class Change:
    """One task result that reported a change."""

    host: str
    task: str
    role: str | None
    check_mode: bool
    handler: bool

    def describe(self, run_in_check_mode: bool) -> str:
        """Return the report line for this change."""
        line = f"{self.host}: {self.task}"
        if self.role:
            line += f" ({self.role})"
        if self.handler:
            line += " [handler]"
        if run_in_check_mode and not self.check_mode:
            # check_mode: false on the task; the change was applied, not predicted.
            line += " [ran outside check mode]"
        return line


def _result_host(result) -> str:
    host = getattr(result, "host", None) or result._host  # ansible-core < 2.19 only has `_host`
    return host.get_name()


def _result_task(result):
    return getattr(result, "task", None) or result._task  # ansible-core < 2.19 only has `_task`


def _role_name(task) -> str | None:
    role = getattr(task, "_role", None)
    if role is None:
        return None
    return role.get_name(include_role_fqcn=True)


class CallbackModule(CallbackBase):
    """Collect changed task results and fail the run if the guard is active and any were seen."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "oceanid.fleet.drift_guard"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None, options=None):
        super().__init__(display=display, options=options)
        self.changes: list[Change] = []
        self.config_error: str | None = None
        self._playbooks_started = 0

    # Settings -----------------------------------------------------------------

    def set_options(self, task_keys=None, var_options=None, direct=None):
        try:
            super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        except AnsibleOptionsError as ex:
            # ansible-core would skip a plugin that fails here with a mere warning, and drift
            # would pass unnoticed. Fail closed: keep the error and stop the run at its start.
            self.config_error = str(ex)

    @staticmethod
    def _cli_check_mode() -> bool:
        """Whether the run was started with --check."""
        return bool(context.CLIARGS.get("check", False))

    @staticmethod
    def _cli_playbook_count() -> int:
        """How many playbooks this command runs (ad-hoc `ansible` passes a host pattern instead)."""
        args = context.CLIARGS.get("args")
        if isinstance(args, (list, tuple)) and args:
            return len(args)
        return 1

    @property
    def mode(self) -> str:
        if self.config_error:
            return "always"
        return self.get_option("mode")

    @property
    def active(self) -> bool:
        """Whether drift fails this run."""
        if self.mode == "always":
            return True
        if self.mode == "check_only":
            return self._cli_check_mode()
        return False

    # Events -------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        if self.config_error:
            self._display.error(
                f"drift_guard: invalid configuration: {self.config_error} Valid modes: {', '.join(MODES)}.",
                wrap_text=False,
            )
            raise SystemExit(CONFIG_ERROR_EXIT_CODE)
        self._playbooks_started += 1

    def v2_runner_on_ok(self, result):
        if self.mode == "off" or not result.is_changed():
            return

        task = _result_task(result)
        self.changes.append(
            Change(
                host=_result_host(result),
                task=result.task_name or task.get_name(),
                role=_role_name(task),
                check_mode=bool(task.check_mode),
                handler=isinstance(task, Handler),
            )
        )

    def v2_playbook_on_stats(self, stats):
        if self._playbooks_started < self._cli_playbook_count():
            return  # more playbooks follow on this command line; judge after the last one
        if not self.active or not self.changes:
            return

        run_in_check_mode = self._cli_check_mode()
        self._display.error(self.report(run_in_check_mode), wrap_text=False)

        if self._run_failed(stats):
            return  # ansible-playbook already exits non-zero; keep its status
        raise SystemExit(DRIFT_EXIT_CODE)

    # Helpers ------------------------------------------------------------------

    def report(self, run_in_check_mode: bool = False) -> str:
        """Return the multi-line drift report."""
        lines = [f"drift_guard: {len(self.changes)} task(s) reported changes:"]
        lines.extend(f"  {change.describe(run_in_check_mode)}" for change in self.changes)
        return "\n".join(lines)

    @staticmethod
    def _run_failed(stats) -> bool:
        return any(stats.failures.values()) or any(stats.dark.values())
