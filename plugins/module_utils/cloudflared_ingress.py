# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloudflared's ``tunnel ingress validate`` checks, in Python, standard library only.

Used before a configuration reaches a connector: by the ``cloudflared_node`` role (through the
``oceanid.fleet.cloudflared_ingress_errors`` filter) before it writes ``config.yaml`` and restarts the
service, and by the ``cloudflare_tunnel`` module before it PUTs a remotely managed configuration (each
connector validates a pushed configuration with the same rules and refuses a bad one, so a bad rule set
would otherwise be accepted by the API and ignored at the edge).

``ingress_errors(config, source)`` returns every problem it finds (cloudflared stops at the first one), as
messages worded like cloudflared's. cloudflared numbers rules from 1 in its messages ("Rule #2 has an
invalid regex"; only ``cloudflared tunnel ingress rule URL`` prints a 0-based index); every message here
that concerns one rule starts with ``Rule #N`` in the same numbering.

The checks (cloudflared ``ingress/ingress.go`` ``validateIngress``/``validateHostname`` and the
``ingress validate`` command):

* a configuration was given at all, with at least one ingress rule;
* each service parses: ``unix:PATH``, ``unix+tls:PATH``, ``http_status:NNN`` (an integer, 100..999),
  ``hello_world``/``hello-world``, ``bastion`` (or ``originRequest.bastionMode``), ``socks-proxy`` (its
  ``ipRules`` prefixes are CIDRs), or a URL with a scheme and a host and no path;
* ``originRequest.access``: ``teamName`` may not be blank when ``required`` is true and ``audTag`` is set;
* a hostname has no port and a ``*`` only as its first character;
* the last rule matches everything (no hostname or ``*``, no path), and no earlier rule does;
* a rule's ``path`` compiles as a regular expression (see ``_RE2_*`` below for how Python's ``re`` is
  brought close to Go's RE2);
* ``url`` (``--url``/``$TUNNEL_URL``) is not set together with ingress rules.

Beyond cloudflared (which only warns about unknown keys and reports type errors from its YAML/JSON
decoder): keys of rules, ``originRequest`` and ``warp-routing`` must be known, with the right types. A
duration is a Go duration string (``30s``, ``1m30s``) in a local YAML file, and an integer number of
seconds in a remote configuration (JSON, cloudflared's ``CustomDuration``).
"""

import ipaddress
import re
from urllib.parse import urlsplit

SOURCES = ("local", "remote")

# cloudflared's own messages (ingress/ingress.go, cmd/cloudflared/tunnel/ingress_subcommands.go).
NO_CONFIG = (
    "No configuration file was found. Please create one, or use the --config flag to specify its filepath. "
    "You can use the help command to learn more about configuration files"
)
NO_RULES = "The config file doesn't contain any ingress rules"
LAST_RULE_NOT_CATCH_ALL = (
    "The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
)
BAD_WILDCARD = (
    'Hostname patterns can have at most one wildcard character ("*") and it can only be used for subdomains, '
    'e.g. "*.example.com"'
)
HOSTNAME_CONTAINS_PORT = "Hostname cannot contain a port"
URL_WITH_INGRESS = "You can't set the --url flag (or $TUNNEL_URL) when using multiple-origin ingress rules"
ACCESS_TEAM_NAME = "access.TeamName cannot be blank when access.audTags are present"

RULE_KEYS = ("hostname", "path", "service", "originRequest")
REMOTE_TOP_LEVEL_KEYS = ("ingress", "originRequest", "warp-routing")

_DURATION = "duration"
_BOOL = "bool"
_INT = "int"
_UINT = "uint"
_STR = "str"
ORIGIN_REQUEST_KEYS = {
    "connectTimeout": _DURATION,
    "tlsTimeout": _DURATION,
    "tcpKeepAlive": _DURATION,
    "noHappyEyeballs": _BOOL,
    "keepAliveConnections": _INT,
    "keepAliveTimeout": _DURATION,
    "httpHostHeader": _STR,
    "originServerName": _STR,
    "matchSNItoHost": _BOOL,
    "caPool": _STR,
    "noTLSVerify": _BOOL,
    "disableChunkedEncoding": _BOOL,
    "bastionMode": _BOOL,
    "proxyAddress": _STR,
    "proxyPort": _UINT,
    "proxyType": _STR,
    "ipRules": "ipRules",
    "http2Origin": _BOOL,
    "access": "access",
}
WARP_ROUTING_KEYS = {"enabled": _BOOL, "connectTimeout": _DURATION, "tcpKeepAlive": _DURATION, "maxActiveFlows": _UINT}
ACCESS_KEYS = {"required": _BOOL, "teamName": _STR, "audTag": "strings", "environment": _STR}
IP_RULE_KEYS = {"prefix": _STR, "ports": "ints", "allow": _BOOL}
PROXY_TYPES = ("", "socks")

# Go's time.ParseDuration grammar: "0", or one or more decimal numbers each with a unit, optional sign.
_GO_DURATION = re.compile(r"[-+]?(?:0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)\Z")
_STATUS_DIGITS = re.compile(r"[-+]?[0-9]+\Z")  # what Go's strconv.Atoi accepts

# Python's re and Go's RE2 differ. RE2 refuses these constructs, which Python accepts (RE2's message).
_RE2_REFUSED = (
    (re.compile(r"\(\?(?:=|!|<=|<!)"), "invalid or unsupported Perl syntax"),  # lookaround
    (re.compile(r"\(\?[>(#]"), "invalid or unsupported Perl syntax"),  # atomic group, conditional, comment
    (re.compile(r"\(\?P="), "invalid or unsupported Perl syntax"),  # named backreference
    (re.compile(r"\\[1-9]"), "invalid escape sequence"),  # backreference
    (re.compile(r"\\Z"), "invalid escape sequence"),  # RE2 has \z only
    (re.compile(r"(?:[*+?]|\})[+]"), "invalid nested repetition operator"),  # possessive quantifier
)
# RE2 syntax Python lacks, rewritten to an equivalent (or, for Unicode classes, a stand-in that only has to
# compile: validation matches nothing).
_RE2_REWRITES = (
    (re.compile(r"\\Q(.*?)(?:\\E|\Z)", re.S), lambda m: re.escape(m.group(1))),
    (re.compile(r"\\[pP](?:\{\^?[A-Za-z_]+\}|[A-Za-z])"), lambda m: r"\w"),
    (
        re.compile(r"\[:\^?(?:alnum|alpha|ascii|blank|cntrl|digit|graph|lower|print|punct|space|upper|word|xdigit):\]"),
        lambda m: r"\w",
    ),
    (re.compile(r"\\z"), lambda m: r"\Z"),
    (re.compile(r"\\C"), lambda m: "."),
    (re.compile(r"\(\?<(?=[A-Za-z_])"), lambda m: "(?P<"),
)
# A flag group: (?flags) or (?flags:...), flags on and off. RE2 knows i, m, s and U.
_RE2_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_RE2_FLAGS = "imsU"
_RE2_REPEAT = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")
_RE2_MAX_REPEAT = 1000


def _kind(value):
    """The YAML/JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _duration_error(where, value, source):
    if source == "local":
        if not isinstance(value, str):
            return (
                "%s: cannot unmarshal %s %r into time.Duration (in a local YAML config a duration is a Go duration string such as '30s')"
                % (
                    where,
                    _kind(value),
                    value,
                )
            )
        if not _GO_DURATION.match(value):
            return '%s: time: invalid duration "%s" (a Go duration such as 30s, 1m30s or 500ms)' % (where, value)
        return None
    if not _is_int(value):
        return "%s: a duration in a remote (JSON) configuration is an integer number of seconds, got %s %r" % (
            where,
            _kind(value),
            value,
        )
    return None


def _type_errors(where, mapping, schema, source):
    """Errors for the keys of ``mapping`` against ``schema`` ({key: type name}); nested types recurse."""
    if not isinstance(mapping, dict):
        return ["%s: expected a mapping, got %s" % (where, _kind(mapping))]
    errors = []
    for key, value in mapping.items():
        place = "%s.%s" % (where, key)
        kind = schema.get(key)
        if kind is None:
            errors.append(
                "%s: unknown key %r (known: %s); cloudflared would ignore it with a warning"
                % (where, key, ", ".join(sorted(schema)))
            )
        elif value is None:
            continue  # an explicit null is the same as leaving the key out, in YAML and in JSON
        elif kind == _DURATION:
            error = _duration_error(place, value, source)
            if error:
                errors.append(error)
        elif kind == _BOOL and not isinstance(value, bool):
            errors.append("%s: expected a boolean (true/false), got %s %r" % (place, _kind(value), value))
        elif kind == _INT and not _is_int(value):
            errors.append("%s: expected an integer, got %s %r" % (place, _kind(value), value))
        elif kind == _UINT and not (_is_int(value) and value >= 0):
            errors.append("%s: expected an unsigned integer, got %s %r" % (place, _kind(value), value))
        elif kind == _STR and not isinstance(value, str):
            errors.append("%s: expected a string, got %s %r" % (place, _kind(value), value))
        elif kind == "strings" and not (
            isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)
        ):
            errors.append("%s: expected a list of strings, got %r" % (place, value))
        elif kind == "ints" and not (isinstance(value, (list, tuple)) and all(_is_int(item) for item in value)):
            errors.append("%s: expected a list of integers, got %r" % (place, value))
        elif kind == "access":
            errors.extend(_type_errors(place, value, ACCESS_KEYS, source))
        elif kind == "ipRules":
            if not isinstance(value, (list, tuple)):
                errors.append("%s: expected a list of {prefix, ports, allow}, got %s" % (place, _kind(value)))
            else:
                for index, item in enumerate(value):
                    errors.extend(_type_errors("%s[%d]" % (place, index), item, IP_RULE_KEYS, source))
    if schema is ORIGIN_REQUEST_KEYS:
        proxy_type = mapping.get("proxyType")
        if isinstance(proxy_type, str) and proxy_type not in PROXY_TYPES:
            errors.append(
                "%s.proxyType: %r is not a proxy type; cloudflared knows '' and 'socks'" % (where, proxy_type)
            )
    return errors


def _access_error(origin_request):
    """cloudflared's access check: teamName may not be blank when access is required and audTag is set."""
    if not isinstance(origin_request, dict):
        return None
    access = origin_request.get("access")
    if not isinstance(access, dict) or access.get("required") is not True:
        return None
    if not access.get("teamName") and access.get("audTag"):
        return ACCESS_TEAM_NAME
    return None


def _url_service_error(service):
    """Why a URL service does not parse the way cloudflared needs it (None when it does)."""
    if any(ord(char) < 0x20 or char == "\x7f" for char in service):
        return 'parse "%s": net/url: invalid control character in URL' % service
    try:
        parts = urlsplit(service)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number (Go's url.Parse refuses it)
    except ValueError as exc:
        return 'parse "%s": %s' % (service, exc)
    if " " in parts.netloc:
        return 'parse "%s": invalid character " " in host name' % service
    if not parts.scheme or not parts.hostname:
        return "%s is an invalid address, please make sure it has a scheme and a hostname" % service
    if parts.path:
        return (
            "%s is an invalid address, ingress rules don't support proxying to a different path on the origin "
            "service. The path will be the same as the eyeball request's path" % service
        )
    return None


def _ip_rules_errors(service, origin_request):
    """socks-proxy builds an IP access policy from originRequest.ipRules; a prefix must be a CIDR."""
    if not isinstance(origin_request, dict) or not isinstance(origin_request.get("ipRules"), (list, tuple)):
        return []
    errors = []
    for index, ip_rule in enumerate(origin_request["ipRules"]):
        if not isinstance(ip_rule, dict):
            continue  # reported by the type check
        prefix = ip_rule.get("prefix")
        if not isinstance(prefix, str) or "/" not in prefix:
            errors.append(
                "unable to create ip rule for %s: ipRules[%d].prefix %r is not a CIDR such as 10.0.0.0/8"
                % (service, index, prefix)
            )
            continue
        try:
            ipaddress.ip_network(prefix, strict=False)
        except ValueError as exc:
            errors.append("unable to create ip rule for %s: invalid CIDR address: %s (%s)" % (service, prefix, exc))
        for port in ip_rule.get("ports") or ():
            if _is_int(port) and not 0 <= port <= 65535:
                errors.append("unable to create ip rule for %s: port %d is out of range" % (service, port))
    return errors


def service_error(service, rule_origin_request=None, bastion_mode=False):
    """Why cloudflared would refuse a rule's ``service`` (None when it parses), worded like cloudflared."""
    if service is None:
        return " is an invalid address, please make sure it has a scheme and a hostname (the rule has no service)"
    if not isinstance(service, str):
        return "service: expected a string, got %s %r" % (_kind(service), service)
    if service.startswith("unix:") or service.startswith("unix+tls:"):
        return None  # cloudflared does not check the socket path
    if service.startswith("http_status:"):
        code = service[len("http_status:") :]
        if not _STATUS_DIGITS.match(code):
            return 'invalid HTTP status code: strconv.Atoi: parsing "%s": invalid syntax' % code
        if not 100 <= int(code) <= 999:
            return "invalid HTTP status code: %d" % int(code)
        return None
    if service in ("hello_world", "hello-world"):
        return None
    if service == "socks-proxy":
        errors = _ip_rules_errors(service, rule_origin_request)
        return "; ".join(errors) if errors else None
    if service == "bastion" or bastion_mode:
        return None
    return _url_service_error(service)


def _split_host_port_succeeds(hostname):
    """Whether Go's net.SplitHostPort accepts ``hostname`` (cloudflared refuses a hostname when it does)."""
    colon = hostname.rfind(":")
    if colon < 0:
        return False
    if hostname.startswith("["):
        end = hostname.find("]")
        return end == colon - 1 and "[" not in hostname[1:end] and "]" not in hostname[colon:]
    host = hostname[:colon]
    return ":" not in host and "[" not in hostname and "]" not in hostname


def _escaped(pattern, index):
    """Whether the character at ``index`` is preceded by an odd number of backslashes."""
    count = 0
    while index > 0 and pattern[index - 1] == "\\":
        count += 1
        index -= 1
    return count % 2 == 1


def _mask_classes(pattern):
    """``pattern`` with the inside of each character class replaced by ``x`` (same length, escapes kept)."""
    out = []
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            pair = pattern[index : index + 2]
            out.append("xx"[: len(pair)] if in_class else pair)
            index += 2
            continue
        if not in_class and char == "[":
            in_class = True
            out.append(char)
            index += 1
            if pattern[index : index + 1] == "^":
                out.append("x")
                index += 1
            if pattern[index : index + 1] == "]":  # a ']' first in a class is a literal
                out.append("x")
                index += 1
            continue
        if in_class and pattern.startswith("[:", index):
            end = pattern.find(":]", index + 2)
            if end > 0:
                out.append("x" * (end + 2 - index))
                index = end + 2
                continue
        if in_class and char == "]":
            in_class = False
            out.append(char)
        else:
            out.append("x" if in_class else char)
        index += 1
    return "".join(out)


def _re2_error(pattern):
    """RE2's refusal of a construct Python's re would accept, or of a repeat count over 1000 (None if none)."""
    masked = _mask_classes(pattern)
    for construct, message in _RE2_REFUSED:
        for match in construct.finditer(masked):
            if not _escaped(masked, match.start()):
                return "error parsing regexp: %s: `%s`" % (message, pattern[match.start() : match.end()])
    for match in _RE2_FLAG_GROUP.finditer(masked):
        letters = match.group(1) + (match.group(2) or "")
        if _escaped(masked, match.start()):
            continue
        if any(letter not in _RE2_FLAGS for letter in letters) or (match.group(2) is not None and not match.group(2)):
            return "error parsing regexp: invalid or unsupported Perl syntax: `%s`" % match.group(0)
    for match in _RE2_REPEAT.finditer(masked):
        if _escaped(masked, match.start()):
            continue
        low, high = match.group(1), match.group(2)
        if int(low) > _RE2_MAX_REPEAT or (high and int(high) > _RE2_MAX_REPEAT):
            return "error parsing regexp: invalid repeat count: `%s`" % match.group(0)
    return None


def _python_pattern(pattern):
    """``pattern`` (already accepted by ``_re2_error``) with RE2-only syntax rewritten for Python's re."""
    for construct, replacement in _RE2_REWRITES:
        pattern = construct.sub(replacement, pattern)

    def flags(match):
        if match.group(3) == ")":
            return "(?:)"  # RE2 allows (?i) anywhere; Python only at the start: flags do not change validity
        on = match.group(1).replace("U", "")
        off = (match.group(2) or "").replace("U", "")
        if not on and not off:
            return "(?:"
        return "(?%s%s:" % (on, "-" + off if off else "")

    return _RE2_FLAG_GROUP.sub(flags, pattern)


def path_error(pattern):
    """Why ``pattern`` does not compile as a Go regular expression (None when it does), Python's re standing in.

    Where they differ: constructs RE2 refuses and Python accepts (lookaround, backreferences, atomic groups,
    conditionals, comments, possessive quantifiers, ``\\Z``, flags other than i/m/s/U, repeat counts over
    1000) are refused here with RE2's message; RE2 syntax Python lacks (``\\Q...\\E``, ``\\pL``/``\\p{Greek}``,
    ``[[:alpha:]]``, ``\\z``, ``\\C``, ``(?<name>``, the ``U`` flag, flags after the start) is rewritten before
    compiling. Not checked: Unicode class names (any ``\\p{Name}`` passes here).
    """
    if not isinstance(pattern, str):
        return "path: expected a string, got %s %r" % (_kind(pattern), pattern)
    error = _re2_error(pattern)
    if error:
        return error
    try:
        re.compile(_python_pattern(pattern))
    except re.error as exc:
        return "error parsing regexp: %s (checked with Python's re)" % exc
    return None


def _rule_errors(number, rule, total, source, bastion_default):
    """Errors of rule ``number`` (1-based) of ``total``."""
    prefix = "Rule #%d: " % number
    if not isinstance(rule, dict):
        return [prefix + "expected a mapping with a service (and hostname, path, originRequest), got %s" % _kind(rule)]
    errors = []
    for key in rule:
        if key not in RULE_KEYS:
            errors.append(
                prefix
                + "unknown key %r (known: %s); cloudflared would ignore it with a warning" % (key, ", ".join(RULE_KEYS))
            )
    origin_request = rule.get("originRequest")
    if origin_request is not None:
        errors.extend(
            prefix + error for error in _type_errors("originRequest", origin_request, ORIGIN_REQUEST_KEYS, source)
        )
    bastion_mode = bastion_default or (isinstance(origin_request, dict) and origin_request.get("bastionMode") is True)
    error = service_error(rule.get("service"), origin_request, bastion_mode)
    if error:
        errors.append(prefix + error)
    error = _access_error(origin_request)
    if error:
        errors.append(prefix + error)

    hostname = rule.get("hostname")
    path = rule.get("path")
    if hostname is None:
        hostname = ""
    if path is None:
        path = ""
    if not isinstance(hostname, str):
        errors.append(prefix + "hostname: expected a string, got %s %r" % (_kind(hostname), hostname))
        hostname = "?"
    elif _split_host_port_succeeds(hostname):
        errors.append(prefix + HOSTNAME_CONTAINS_PORT)
    elif hostname.rfind("*") > 0:
        errors.append(prefix + BAD_WILDCARD)
    catch_all = hostname in ("", "*") and path == ""
    if number == total and not catch_all:
        errors.append(prefix + LAST_RULE_NOT_CATCH_ALL)
    elif number < total and catch_all:
        errors.append(
            "Rule #%d is matching the hostname '%s', but this will match every hostname, meaning the rules which "
            "follow it will never be triggered." % (number, hostname)
        )
    if path != "":
        error = path_error(path)
        if error:
            errors.append("Rule #%d has an invalid regex: %s" % (number, error))
    return errors


def ingress_errors(config, source="local", url=None):
    """Every reason ``cloudflared tunnel ingress validate`` (and a connector) would refuse ``config``.

    ``config``: the whole configuration as a mapping: a local ``config.yaml`` (``tunnel``,
    ``credentials-file``, ``ingress``, ``originRequest``, ``warp-routing``, flags...) or a remote
    configuration (the ``config`` object of PUT .../configurations: ``ingress``, ``originRequest``,
    ``warp-routing``). ``source``: ``local`` (Go duration strings) or ``remote`` (integer seconds; unknown
    top-level keys refused). ``url``: the ``--url`` flag, if the connector is started with one (a local
    config's own ``url`` key counts too). Returns a list of messages; empty when valid.
    """
    if source not in SOURCES:
        raise ValueError("source must be one of %s, got %r" % (", ".join(SOURCES), source))
    if config is None:
        return [NO_CONFIG]
    if not isinstance(config, dict):
        return ["the configuration is a %s; expected a mapping with an 'ingress' list" % _kind(config)]
    errors = []
    if source == "remote":
        for key in config:
            if key not in REMOTE_TOP_LEVEL_KEYS:
                errors.append(
                    "unknown key %r in a remote configuration (known: %s)" % (key, ", ".join(REMOTE_TOP_LEVEL_KEYS))
                )
    defaults = config.get("originRequest")
    if defaults is not None:
        errors.extend(_type_errors("originRequest", defaults, ORIGIN_REQUEST_KEYS, source))
        error = _access_error(defaults)
        if error:
            errors.append("originRequest: " + error)
    warp_routing = config.get("warp-routing")
    if warp_routing is not None:
        errors.extend(_type_errors("warp-routing", warp_routing, WARP_ROUTING_KEYS, source))

    rules = config.get("ingress")
    if rules is None or (isinstance(rules, (list, tuple)) and not rules):
        errors.append(NO_RULES)
        return errors
    if not isinstance(rules, (list, tuple)):
        errors.append("ingress: expected a list of rules, got %s" % _kind(rules))
        return errors
    bastion_default = isinstance(defaults, dict) and defaults.get("bastionMode") is True
    for index, rule in enumerate(rules):
        errors.extend(_rule_errors(index + 1, rule, len(rules), source, bastion_default))
    if url or (source == "local" and config.get("url")):
        errors.append(URL_WITH_INGRESS)
    return errors


def is_catch_all(rule):
    """Whether a rule matches every request (no hostname or ``*``, no path): the kind that must come last."""
    return isinstance(rule, dict) and (rule.get("hostname") or "") in ("", "*") and not rule.get("path")
