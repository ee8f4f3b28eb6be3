# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the ``oceanid.fleet.fleet`` inventory marks and writes values: remote ones unsafe, its own trusted.

Private to this collection (the leading underscore).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from ansible.utils.unsafe_proxy import wrap_var

try:
    from ansible.template import trust_as_template as _trust
except ImportError:  # ansible-core before 2.19 templates every plain str: trusted already

    def _trust(value):
        return value


# ansible-core 2.19 and later template only values tagged as trusted, so an untagged str from AWS or from the cache is
# already unsafe and wrap_var hands it back as is; before 2.19 wrap_var makes an AnsibleUnsafeText of it.
_UNTAGGED_IS_UNSAFE = type(wrap_var("probe")) is str  # pylint: disable=unidiomatic-typecheck
_SCALARS = (str, int, float, bool, type(None))


def unsafe(value):
    """wrap_var, with a fast path for the plain JSON values of the cache and of boto3 where they are unsafe already.

    A tagged value (a str subclass that may carry template trust) takes wrap_var's path, which strips the trust.
    """
    cls = type(value)
    if _UNTAGGED_IS_UNSAFE:
        if cls in _SCALARS:
            return value
        if cls is dict:
            return {unsafe(k): unsafe(v) for k, v in value.items()}
        if cls is list:
            return [unsafe(v) for v in value]
    return wrap_var(value)


def plain(value):
    """A JSON-ready copy without ansible-core's data tags (origin, trust), for the cache."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


class Trusted:
    """Marks the plugin's own values (fleet_sources, fleet_gpu) as trusted, like the configuration's values.

    They come from the configuration and the GPU table, not from AWS, so they need not be unsafe, and on 2.19
    ``--list`` then prints them as plain strings, not as ``{"__ansible_unsafe": ...}``. The few distinct strings
    (source names, GPU models) are tagged once each and shared: a str cannot change.
    """

    def __init__(self):
        self._strings = {}

    def __call__(self, value):
        cls = type(value)
        if cls is dict:
            return {key: self(item) for key, item in value.items()}
        if cls is list:
            return [self(item) for item in value]
        if isinstance(value, str):
            trusted = self._strings.get(value)
            if trusted is None:
                trusted = self._strings[value] = _trust(str(value))
            return trusted
        return value


def set_host_variables(inventory, host, variables, mark):
    """Set variables on an inventory host, each value passed through ``mark`` (``unsafe`` or a ``Trusted``).

    Not through ``inventory.set_variable``: ansible-core 2.19 hands plugins a proxy of InventoryData whose
    set_variable walks every value again to tag its origin, and Host.set_variable checks and untrusts each name
    (ours are fixed and valid). Measured on a warm ``ansible-inventory --list`` of 2,000 hosts with 11 variables
    each, in one region (benchmarks/inventory): ``inventory.set_variable`` for every value
    costs +0.28 s over this, 1.24 s against 0.95 s (medians of 8 alternating runs, 2026-12-04), where
    the floor (the same hosts and groups with no variable) is 0.66 s: 43% of the floor. So the values go into the
    host's variables directly; ``inventory.get_host`` is public API, and a mapping that meets a mapping already
    set (a static host's variable) still goes through Host.set_variable, which merges as ansible does.
    """
    target = inventory.get_host(host)
    for key, value in variables.items():
        value = mark(value)
        current = target.vars  # read each time: a merge replaces the host's dict
        if key in current and isinstance(value, Mapping) and isinstance(current[key], MutableMapping):
            target.set_variable(key, value)
        else:
            current[key] = value
