# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""k3s config.yaml: the checks k3s would make of its keys and values, and the one file format the k3s role writes.

Standard library only, Python 3.8: the same code runs in the controller's filters (preflight, before anything is
written) and on the node as the ``validate:`` command of config.yaml and each drop-in
(roles/k3s/files/k3s_config_check.py, next to a copy of this file and of k3s_flags.py). The flag table is passed
in (``flags``, ``choices``: the dicts of k3s_flags.py) so that this file imports nothing of the collection.

What k3s does with config.yaml (facts in k3s_flags.py's source, pkg/configfilearg): each key is a flag name or
alias without dashes; ``key+`` appends to a repeatable flag; ``k3s server`` skips unknown keys with a warning,
``k3s agent`` exits ("flag provided but not defined"). This checker refuses both. Values: a bool flag wants a
boolean, an int flag an integer, a duration flag a Go duration, a stringSlice flag a string or a list of them.
yaml.v2 reads an unquoted ``0644`` as the integer 420, which k3s passes on as "420" and parses as the octal mode
0420: a mode given as a number is refused.

The file format (``dump``/``parse``): ``key: <scalar>`` or ``key:`` followed by ``  - <scalar>`` lines; strings
always double-quoted (JSON escapes, valid YAML), booleans ``true``/``false``, integers in decimal. It is YAML that
k3s reads exactly as meant, and it is parsed here without a YAML library (nodes need not have one).
"""

import difflib
import json
import re

_KEY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)(\+?)$")
_LINE_KEY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*\+?):(?: (.*))?$")
_LINE_ITEM = re.compile(r"^  - (.*)$")
_INT = re.compile(r"^-?[0-9]+$")
_DURATION = re.compile(r"^(0|([0-9]+(\.[0-9]+)?(ns|us|\u00b5s|ms|s|m|h))+)$")
_MODE = re.compile(r"^0?[0-7]{3}$")
# Flags whose value is a file mode that k3s parses as octal (strconv.ParseInt(mode, 8, 0)).
MODE_FLAGS = ("write-kubeconfig-mode",)
# k3s splits these comma-separated values itself (util.SplitStringSlice); choices are checked per item.
COMMA_SPLIT = ("tls-san", "node-external-ip", "node-ip", "cluster-cidr", "service-cidr", "cluster-dns", "disable")
COMMANDS = ("server", "agent")


class ConfigFormatError(ValueError):
    """A file that is not in the form ``dump`` writes; ``line`` is 1-based."""

    def __init__(self, line, message):
        super().__init__("line %d: %s" % (line, message))
        self.line = line


def names(flags, command):
    """Every key ``command`` accepts (long names and aliases) -> the flag's long name."""
    index = {}
    for name, (_type, _repeatable, aliases, _hidden, _deprecated) in flags[command].items():
        index[name] = name
        for alias in aliases:
            index[alias] = name
    return index


def closest(key, flags, command):
    """The known flag of ``command`` nearest to ``key`` (difflib), or None."""
    found = difflib.get_close_matches(key, sorted(flags[command]), n=1, cutoff=0.6)
    return found[0] if found else None


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "the integer %d" % value
    if isinstance(value, float):
        return "the number %r" % value
    if isinstance(value, str):
        return "the string %s" % json.dumps(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a %s" % type(value).__name__


def _value_errors(name, value, flag_type, repeatable, choices):
    """Why ``value`` is not acceptable for flag ``name``; empty when it is."""
    if repeatable:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        errors = []
        for item in items:
            if not isinstance(item, str) or isinstance(item, bool):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    continue  # k3s prints numbers in decimal; an IP or a port as a number is still what was meant
                errors.append("%s is a list of strings (repeatable flag), not %s" % (name, _type_name(item)))
        if not errors and name in choices:
            for item in items:
                parts = item.split(",") if name in COMMA_SPLIT else [item]
                for part in parts:
                    if part.strip() not in choices[name]:
                        errors.append(
                            "%s value %s is not one of %s" % (name, json.dumps(part.strip()), ", ".join(choices[name]))
                        )
        return errors
    if isinstance(value, (list, tuple)):
        return ["%s is not repeatable: give one %s, not a list" % (name, flag_type)]
    if flag_type == "bool":
        return (
            []
            if isinstance(value, bool)
            else ["%s is a boolean flag (true or false), not %s" % (name, _type_name(value))]
        )
    if flag_type == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return []
        return ["%s is an integer flag, not %s" % (name, _type_name(value))]
    if flag_type == "duration":
        if isinstance(value, str) and _DURATION.match(value):
            return []
        return ['%s is a Go duration such as "5m0s" or "30s", not %s' % (name, _type_name(value))]
    # string
    if name in MODE_FLAGS:
        if isinstance(value, int) and not isinstance(value, bool):
            return [
                "%s is the integer %d: YAML reads an unquoted mode such as 0%o as an octal number, and k3s would parse"
                ' "%d" as the mode 0%d; quote it, e.g. "0%o"' % (name, value, value, value, value, value)
            ]
        if not (isinstance(value, str) and _MODE.match(value)):
            return ['%s is a quoted octal file mode such as "0600", not %s' % (name, _type_name(value))]
        return []
    if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        if name in choices and str(value) not in choices[name]:
            return ["%s value %s is not one of %s" % (name, json.dumps(str(value)), ", ".join(choices[name]))]
        return []
    return ["%s is a string flag, not %s" % (name, _type_name(value))]


def config_errors(config, command, flags, choices, reserved=None, where="config.yaml"):
    """Every reason k3s ``command`` would refuse or misread ``config`` (a mapping of config.yaml keys); empty if none.

    ``reserved`` maps keys the caller sets itself to the variable to use instead (e.g. token -> k3s_token).
    ``where`` names the source in each message (a variable name, or a file).
    """
    if command not in COMMANDS:
        raise ValueError("command is %r; expected server or agent" % (command,))
    if not isinstance(config, dict):
        return ["%s is %s, not a mapping of k3s flags" % (where, _type_name(config))]
    reserved = reserved or {}
    own = names(flags, command)
    other = names(flags, "agent" if command == "server" else "server")
    errors = []
    for key in sorted(config, key=str):
        value = config[key]
        match = _KEY.match(key) if isinstance(key, str) else None
        if not match:
            errors.append("%s: key %s is not a k3s flag name" % (where, json.dumps(str(key))))
            continue
        bare, append = match.group(1), bool(match.group(2))
        if bare in reserved or own.get(bare) in reserved:
            errors.append(
                "%s: key %s is set by the k3s role itself; use %s instead"
                % (where, key, reserved.get(bare) or reserved[own[bare]])
            )
            continue
        if bare not in own:
            if bare in other:
                if command == "agent":
                    errors.append(
                        "%s: key %s is a `k3s server` flag only: `k3s agent` would exit with"
                        ' "flag provided but not defined: -%s"' % (where, key, bare)
                    )
                else:
                    errors.append(
                        "%s: key %s is a `k3s agent` flag only: `k3s server` would skip it with a warning"
                        % (where, key)
                    )
                continue
            near = closest(bare, flags, command)
            errors.append(
                "%s: key %s is not a flag of `k3s %s`%s"
                % (where, key, command, " (closest known flag: %s)" % near if near else " (no known flag is close)")
            )
            continue
        name = own[bare]
        flag_type, repeatable = flags[command][name][0], flags[command][name][1]
        if append and not repeatable:
            errors.append("%s: key %s appends (+), but %s is not repeatable" % (where, key, name))
            continue
        if value is None or (isinstance(value, dict)):
            errors.append("%s: %s has %s as value" % (where, key, _type_name(value)))
            continue
        errors.extend(
            "%s: %s" % (where, message) for message in _value_errors(name, value, flag_type, repeatable, choices)
        )
    return errors


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "%d" % value
    if isinstance(value, float):
        return repr(value)
    return json.dumps(str(value))


def dump(config, header=""):
    """config.yaml text in the role's format (keys in the given order)."""
    lines = list(header.splitlines())
    for key, value in config.items():
        if isinstance(value, (list, tuple)):
            if not value:
                lines.append("%s: []" % key)
                continue
            lines.append("%s:" % key)
            lines.extend("  - %s" % _scalar(item) for item in value)
        else:
            lines.append("%s: %s" % (key, _scalar(value)))
    return "\n".join(lines) + "\n"


def _parse_scalar(text, number):
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigFormatError(number, "a double-quoted string that does not parse: %s" % text)
        if not isinstance(value, str):
            raise ConfigFormatError(number, "not a string: %s" % text)
        return value
    if text in ("true", "false"):
        return text == "true"
    if _INT.match(text):
        if len(text.lstrip("-")) > 1 and text.lstrip("-").startswith("0"):
            raise ConfigFormatError(number, "%s: a number with a leading 0 (YAML reads it as octal); quote it" % text)
        return int(text)
    if text == "[]":
        return []
    raise ConfigFormatError(number, "%s is not a quoted string, true/false or a decimal integer" % text)


def parse(text):
    """The mapping in a file of the role's format; ConfigFormatError for anything else."""
    config = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        item = _LINE_ITEM.match(line)
        if item:
            if current is None:
                raise ConfigFormatError(number, "a list item without a key above it")
            config[current].append(_parse_scalar(item.group(1), number))
            continue
        match = _LINE_KEY.match(line)
        if not match:
            raise ConfigFormatError(number, "not 'key: value', 'key:' or '  - item': %s" % line[:80])
        key = match.group(1)
        if key in config:
            raise ConfigFormatError(number, "key %s given twice" % key)
        if match.group(2) is None:
            config[key] = []
            current = key
        else:
            config[key] = _parse_scalar(match.group(2), number)
            current = None
    return config
