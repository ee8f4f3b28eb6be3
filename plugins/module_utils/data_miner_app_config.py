# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data-miner application config: the seed's three layers merged, ``${a.b}`` references resolved.

Standard library only, Python 3.8. The k3s data-miner seed (002_040cd591b6393ee0.txt) builds its ConfigMap as
``merge(default.yaml, run_config, cluster_config.k3s_app_overrides)``. Later layers win; mappings are merged key by
key; anything else (lists, ``''``, ``0``, ``false``, ``null``) replaces. An empty string stays an empty string: the
seed's ``blocked_hashtag_patterns: ''`` was turned into ``Path('.')`` ("Is a directory: '.'").

``${a.b}`` references are resolved against a context mapping (the whole stack configuration): a string that is
exactly one reference takes the referenced value with its type; a reference inside a longer string is formatted
into it (booleans as true/false; a mapping, a list or null cannot be); ``$${`` writes a literal ``${``.
References inside referenced values are followed; a cycle, an unknown or an empty reference raise DataMinerError
naming the reference and the key that holds it.
"""

import copy
import re

_REFERENCE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")


class DataMinerError(ValueError):
    """Invalid input; ``errors`` holds one line per problem."""

    def __init__(self, errors):
        self.errors = list(errors) if isinstance(errors, (list, tuple)) else [errors]
        super().__init__("\n".join(self.errors))


def _mapping(value):
    return isinstance(value, dict)


def deep_merge(*layers):
    """The layers merged, later ones winning; mappings merged key by key, anything else replaced (a later ``''``,
    ``0``, ``false`` or ``null`` replaces too). The inputs are not modified."""
    result = {}
    for layer in layers:
        if layer is None:
            continue
        if not _mapping(layer):
            raise DataMinerError("app_config: every layer must be a mapping, got %r" % (layer,))
        result = _merge_two(result, layer)
    return result


def _merge_two(base, layer):
    merged = copy.deepcopy(base)
    for key, value in layer.items():
        if _mapping(value) and _mapping(merged.get(key)):
            merged[key] = _merge_two(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _lookup(context, reference, holder):
    """The value at dotted ``reference`` in ``context``; DataMinerError naming the reference and its holder."""
    value = context
    walked = []
    for part in reference.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif _mapping(value) and part in value:
            value = value[part]
        else:
            if _mapping(value):
                known = "known keys: %s" % ", ".join(sorted(str(k) for k in value))
            elif isinstance(value, list):
                known = "it is a list of %d items, indexed from 0" % len(value)
            else:
                known = "it is a %s, not a mapping" % type(value).__name__
            where = ".".join(walked) or "the context"
            raise DataMinerError(
                "%s: unknown reference ${%s} (%s has no %r; %s)" % (holder, reference, where, part, known)
            )
        walked.append(part)
    return value


def _format(value, reference, holder):
    if value is None:
        raise DataMinerError("%s: ${%s} is null and cannot be written into a string" % (holder, reference))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise DataMinerError(
            "%s: ${%s} is a %s and cannot be written into a string (use it as the whole value)"
            % (holder, reference, type(value).__name__)
        )
    return str(value)


def _resolve(value, context, holder, stack):
    """``value`` with every reference resolved; ``stack`` holds the references being resolved (cycle check)."""
    if _mapping(value):
        return {key: _resolve(item, context, "%s.%s" % (holder, key), stack) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, context, "%s[%d]" % (holder, index), stack) for index, item in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole and whole.group(1) is not None:
        return _follow(whole.group(1).strip(), context, holder, stack)

    def substitute(match):
        if match.group(1) is None:
            return "${"
        reference = match.group(1).strip()
        return _format(_follow(reference, context, holder, stack), reference, holder)

    return _REFERENCE.sub(substitute, value)


def _follow(reference, context, holder, stack):
    if not reference:
        raise DataMinerError("%s: empty reference ${}" % holder)
    if reference in stack:
        chain = " -> ".join("${%s}" % item for item in stack + [reference])
        raise DataMinerError("%s: reference cycle %s" % (holder, chain))
    if len(stack) >= 32:
        raise DataMinerError("%s: references nested deeper than 32 (%s)" % (holder, " -> ".join(stack)))
    target = _lookup(context, reference, holder)
    return _resolve(copy.deepcopy(target), context, holder, stack + [reference])


def interpolate(value, context, holder="app_config"):
    """``value`` with its ``${a.b}`` references resolved against ``context`` (see the module docstring)."""
    return _resolve(value, context if context is not None else {}, holder, [])


def app_config(defaults, run_config, overrides, context):
    """The merged application config: defaults, then the run config, then the k3s overrides; references resolved.

    Raises DataMinerError naming the reference and the key holding it when a reference is unknown or cyclic.
    """
    merged = deep_merge(defaults or {}, run_config or {}, overrides or {})
    return interpolate(merged, context, "app_config")
