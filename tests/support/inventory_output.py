# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading ``ansible-inventory --list`` output (ansible-core 2.19) in tests and benchmarks."""

from __future__ import annotations


def plain(value):
    """The value with untrusted (unsafe) strings, which --list writes as ``{"__ansible_unsafe": ...}``, unwrapped."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def group_members(data: dict) -> dict[str, set[str]]:
    """Group -> the hosts directly in it."""
    return {name: set(body.get("hosts", [])) for name, body in data.items() if name != "_meta"}
