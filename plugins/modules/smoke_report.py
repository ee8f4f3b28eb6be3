#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: smoke_report
short_description: Write the fleet's smoke report as JSON and return it as a table
version_added: 0.1.0
description:
  - Takes the smoke records of C(playbooks/smoke.yml), each C({layer, check, host, status, detail}) with C(status)
    one of C(ok), C(failed), C(not run), validates them, and writes the report to O(path) as JSON through a
    temporary file in the same directory and a rename (a reader never sees half a report).
  - The report is C({format, generated, inventory, ok, counts, checks}); C(checks) are the records in the order
    given; C(ok) is false when any check failed. A record C(not run) must say why in its C(detail).
  - Returns the records as text lines (C(layer | check | host | status | detail)) for the terminal.
  - With O(fail_on_failed), fails when any check failed, naming each failed check and its detail; the report is
    written first.
options:
  records:
    description: The smoke records.
    type: list
    elements: dict
    required: true
  path:
    description: Where the JSON report goes, on the host the module runs on (the controller in the playbook).
      Missing directories are made.
    type: path
    required: true
  inventory:
    description: The inventory the checks ran against, written into the report.
    type: str
    default: ""
  fail_on_failed:
    description: Fail when any check failed.
    type: bool
    default: true
  detail_width:
    description: Characters of C(detail) shown per table line (the JSON keeps all); 0 for no limit.
    type: int
    default: 110
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - The report is written in check mode too; it is the result of the checks, not a change to the fleet.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Whether the module's second run with the same arguments changes nothing.
    support: none
    details:
      - Each run writes the report again, with the time it was made.
seealso:
  - module: oceanid.fleet.triton_infer_check
  - module: oceanid.fleet.s3_roundtrip_check
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: Write the smoke report and fail on a failed check
  oceanid.fleet.smoke_report:
    records:
      - {layer: serving, check: triton live, host: calypso, status: ok, detail: "GET http://10.0.0.5:8000/v2/health/live: live"}
      - {layer: cluster, check: k3s nodes Ready, host: tethys, status: not run, detail: "fleet_k3s_enabled is false"}
    path: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/oceanid/smoke/lab/smoke-report.json"
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: Where the report was written.
  returned: always
  type: str
ok:
  description: No check failed.
  returned: always
  type: bool
counts:
  description: Records per status.
  returned: always
  type: dict
  sample: {ok: 17, failed: 0, "not run": 4}
table:
  description: The records as text lines, a header and a rule first.
  returned: always
  type: list
  elements: str
failed_checks:
  description: "C(layer/check on host: detail) of each failed check."
  returned: always
  type: list
  elements: str
"""

import datetime
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.smoke import (
    SmokeError,
    counts,
    failed,
    label,
    normalize,
    report,
    table,
    write_atomically,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "records": {"type": "list", "elements": "dict", "required": True},
            "path": {"type": "path", "required": True},
            "inventory": {"type": "str", "default": ""},
            "fail_on_failed": {"type": "bool", "default": True},
            "detail_width": {"type": "int", "default": 110},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        records = normalize(params["records"])
    except SmokeError as exc:
        module.fail_json(msg="invalid smoke records: %s" % exc)
    generated = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    document = report(records, generated, params["inventory"])
    try:
        write_atomically(params["path"], document)
    except OSError as exc:
        module.fail_json(
            msg="could not write the smoke report to %s: %s" % (params["path"], exc), exception=traceback.format_exc()
        )
    failures = ["%s: %s" % (label(item), item["detail"]) for item in failed(records)]
    result = {
        "changed": False,
        "path": params["path"],
        "ok": not failures,
        "counts": counts(records),
        "table": table(records, params["detail_width"]),
        "failed_checks": failures,
    }
    if failures and params["fail_on_failed"]:
        module.fail_json(msg="%d smoke check(s) failed: %s" % (len(failures), " | ".join(failures)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
