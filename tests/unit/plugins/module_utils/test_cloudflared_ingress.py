# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cloudflared's `ingress validate` checks (module_utils/cloudflared_ingress.py): each check with a configuration
it accepts and one it refuses, with cloudflared's wording and 1-based rule numbers."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_ingress import (
    ingress_errors,
    is_catch_all,
    path_error,
    service_error,
)

TUNNEL = "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"
CATCH_ALL = {"service": "http_status:404"}


def local(*rules, **top):
    """A local config.yaml with these rules and the catch-all last."""
    return {
        "tunnel": TUNNEL,
        "credentials-file": f"/etc/cloudflared/{TUNNEL}.json",
        **top,
        "ingress": [*rules, CATCH_ALL],
    }


GPU = {"hostname": "gpu.oceanid.example", "service": "http://localhost:8000"}


def test_the_seed_configuration_is_valid():
    assert ingress_errors(local(GPU)) == []
    assert ingress_errors({"ingress": [GPU, CATCH_ALL]}, source="remote") == []


def test_no_configuration():
    assert ingress_errors(None) == [
        "No configuration file was found. Please create one, or use the --config flag to specify its filepath. "
        "You can use the help command to learn more about configuration files"
    ]
    assert ingress_errors(["not", "a", "mapping"]) == [
        "the configuration is a list; expected a mapping with an 'ingress' list"
    ]


@pytest.mark.parametrize("config", [{"tunnel": TUNNEL}, {"tunnel": TUNNEL, "ingress": []}, {"ingress": None}])
def test_at_least_one_rule(config):
    assert ingress_errors(config) == ["The config file doesn't contain any ingress rules"]
    assert ingress_errors({"ingress": [CATCH_ALL]}) == []


def test_ingress_must_be_a_list():
    assert ingress_errors({"ingress": {"service": "http_status:404"}}) == [
        "ingress: expected a list of rules, got mapping"
    ]


@pytest.mark.parametrize(
    "service",
    [
        "http://localhost:8000",
        "https://127.0.0.1:8443",
        "ws://localhost:9000",
        "wss://localhost:9000",
        "tcp://localhost:6443",
        "ssh://localhost:22",
        "rdp://10.0.0.5:3389",
        "http://[::1]:8000",
        "http://localhost:8000?q=1",  # cloudflared checks the path only
        "unix:/run/triton.sock",
        "unix+tls:/run/triton.sock",
        "http_status:404",
        "http_status:100",
        "http_status:999",
        "http_status:+200",  # Go's strconv.Atoi takes a sign
        "hello_world",
        "hello-world",
        "bastion",
        "socks-proxy",
    ],
)
def test_services_cloudflared_accepts(service):
    assert service_error(service) is None
    assert ingress_errors(local({"hostname": "a.oceanid.example", "service": service})) == []


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("http_status:99", "invalid HTTP status code: 99"),
        ("http_status:1000", "invalid HTTP status code: 1000"),
        ("http_status:abc", 'invalid HTTP status code: strconv.Atoi: parsing "abc": invalid syntax'),
        ("http_status:", 'invalid HTTP status code: strconv.Atoi: parsing "": invalid syntax'),
        ("localhost:8000", "localhost:8000 is an invalid address, please make sure it has a scheme and a hostname"),
        ("//localhost:8000", "//localhost:8000 is an invalid address, please make sure it has a scheme and a hostname"),
        ("http://", "http:// is an invalid address, please make sure it has a scheme and a hostname"),
        ("helloworld", "helloworld is an invalid address, please make sure it has a scheme and a hostname"),
        (
            "http://localhost:8000/api",
            "http://localhost:8000/api is an invalid address, ingress rules don't support proxying to a different "
            "path on the origin service. The path will be the same as the eyeball request's path",
        ),
        (
            "http://localhost:8000/",
            "http://localhost:8000/ is an invalid address, ingress rules don't support proxying to a different "
            "path on the origin service. The path will be the same as the eyeball request's path",
        ),
        ("http://[::1", 'parse "http://[::1": Invalid IPv6 URL'),
        ("http://local host:80", 'parse "http://local host:80": invalid character " " in host name'),
        ("http://localhost:80\n", 'parse "http://localhost:80\n": net/url: invalid control character in URL'),
    ],
)
def test_services_cloudflared_refuses(service, message):
    assert service_error(service) == message
    errors = ingress_errors(local(GPU, {"hostname": "b.oceanid.example", "service": service}))
    assert errors == [f"Rule #2: {message}"]


def test_a_bad_port_in_a_service_url():
    (error,) = ingress_errors(local({"hostname": "a.oceanid.example", "service": "http://localhost:abc"}))
    assert error.startswith('Rule #1: parse "http://localhost:abc": ')


def test_a_rule_without_service():
    assert ingress_errors({"ingress": [{"hostname": "a.oceanid.example"}, CATCH_ALL]}) == [
        "Rule #1:  is an invalid address, please make sure it has a scheme and a hostname (the rule has no service)"
    ]
    assert ingress_errors({"ingress": [{"service": 404}]}) == ["Rule #1: service: expected a string, got integer 404"]


def test_bastion_mode_accepts_any_service():
    rule = {"hostname": "a.oceanid.example", "service": "not-a-url", "originRequest": {"bastionMode": True}}
    assert ingress_errors(local(rule)) == []
    assert (
        ingress_errors(local({"hostname": "a.oceanid.example", "service": "x"}, originRequest={"bastionMode": True}))
        == []
    )
    assert ingress_errors(local({"hostname": "a.oceanid.example", "service": "x"})) == [
        "Rule #1: x is an invalid address, please make sure it has a scheme and a hostname"
    ]


def test_socks_proxy_ip_rules():
    good = {
        "ipRules": [{"prefix": "10.0.0.0/8", "ports": [80, 443], "allow": True}, {"prefix": "::/0", "allow": False}]
    }
    assert (
        ingress_errors(local({"hostname": "s.oceanid.example", "service": "socks-proxy", "originRequest": good})) == []
    )
    bad = {
        "ipRules": [
            {"prefix": "10.0.0.1", "allow": True},
            {"prefix": "10.0.0.0/33"},
            {"prefix": "10/8", "ports": [70000]},
        ]
    }
    errors = ingress_errors(local({"hostname": "s.oceanid.example", "service": "socks-proxy", "originRequest": bad}))
    assert len(errors) == 1
    assert errors[0].startswith(
        "Rule #1: unable to create ip rule for socks-proxy: ipRules[0].prefix '10.0.0.1' is not a CIDR"
    )
    assert "invalid CIDR address: 10.0.0.0/33" in errors[0]
    assert "port 70000 is out of range" in errors[0]


ACCESS = {"required": True, "teamName": "oceanid", "audTag": ["aud1"]}


@pytest.mark.parametrize(
    "access",
    [ACCESS, {"required": True}, {"required": False, "audTag": ["aud1"]}, {"required": True, "teamName": "oceanid"}],
)
def test_access_accepted(access):
    rule = {**GPU, "originRequest": {"access": access}}
    assert ingress_errors(local(rule)) == []
    assert ingress_errors({"ingress": [rule, CATCH_ALL]}, source="remote") == []


def test_access_team_name_required_with_aud_tags():
    access = {"required": True, "audTag": ["aud1"]}
    assert ingress_errors(local({**GPU, "originRequest": {"access": access}})) == [
        "Rule #1: access.TeamName cannot be blank when access.audTags are present"
    ]
    assert ingress_errors(local(GPU, originRequest={"access": {**access, "teamName": ""}})) == [
        "originRequest: access.TeamName cannot be blank when access.audTags are present"
    ]


@pytest.mark.parametrize(
    "hostname", ["gpu.oceanid.example", "*.oceanid.example", "*foo.example", "xn--bcher-kva.example", "::1"]
)
def test_hostnames_accepted(hostname):
    assert ingress_errors(local({"hostname": hostname, "service": "http://localhost:8000"})) == []


@pytest.mark.parametrize("hostname", ["gpu.oceanid.example:443", "gpu.oceanid.example:", "[::1]:8000", "localhost:abc"])
def test_hostname_with_port(hostname):
    assert ingress_errors(local({"hostname": hostname, "service": "http://localhost:8000"})) == [
        "Rule #1: Hostname cannot contain a port"
    ]


@pytest.mark.parametrize("hostname", ["a.*.example", "**.example", "gpu*", "*.a*.example"])
def test_wildcard_only_first(hostname):
    assert ingress_errors(local({"hostname": hostname, "service": "http://localhost:8000"})) == [
        'Rule #1: Hostname patterns can have at most one wildcard character ("*") and it can only be used for '
        'subdomains, e.g. "*.example.com"'
    ]


def test_hostname_must_be_a_string():
    assert ingress_errors(local({"hostname": 42, "service": "http://localhost:8000"})) == [
        "Rule #1: hostname: expected a string, got integer 42"
    ]


@pytest.mark.parametrize("last", [{"service": "http_status:404"}, {"hostname": "*", "service": "http_status:404"}])
def test_last_rule_catch_all_accepted(last):
    assert ingress_errors({"ingress": [GPU, last]}) == []
    assert is_catch_all(last)


@pytest.mark.parametrize(
    "last",
    [GPU, {"service": "http_status:404", "path": "^/"}, {"hostname": "*", "path": "/x", "service": "http_status:404"}],
)
def test_last_rule_not_catch_all(last):
    assert ingress_errors({"ingress": [last]}) == [
        "Rule #1: The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
    ]
    assert not is_catch_all(last)


@pytest.mark.parametrize("hostname", [None, "*"])
def test_earlier_catch_all(hostname):
    early = {"service": "http://localhost:8000"}
    if hostname:
        early["hostname"] = hostname
    shown = hostname or ""
    assert ingress_errors({"ingress": [GPU, early, CATCH_ALL]}) == [
        f"Rule #2 is matching the hostname '{shown}', but this will match every hostname, meaning the rules which "
        "follow it will never be triggered."
    ]
    # A path makes a rule without hostname specific enough.
    assert ingress_errors({"ingress": [GPU, {**early, "path": "^/v2/"}, CATCH_ALL]}) == []


@pytest.mark.parametrize(
    "pattern",
    [
        r"^/v2/health/ready$",
        r"/[a-zA-Z]+.html",
        r"\.(?:jpg|png)$",
        r"(?i)^/API",
        r"a(?i:b)c",
        r"a(?i)b",  # RE2 takes flags anywhere, Python only at the start
        r"(?U)a*",  # RE2's ungreedy flag
        r"(?s-m:x)",
        r"\pL+",
        r"\p{Greek}",
        r"[[:alpha:]]+",
        r"(?P<v>v[0-9]+)",
        r"(?<v>v[0-9]+)",
        r"^/x\z",
        r"\Qa.b(\E",
        r"[*+]x",
        r"\++",
        r"a{2,1000}",
        r"\(?=x",
    ],
)
def test_paths_re2_accepts(pattern):
    assert path_error(pattern) is None
    assert ingress_errors(local({**GPU, "path": pattern})) == []


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(", "error parsing regexp: missing ), unterminated subpattern at position 0 (checked with Python's re)"),
        ("[a-", "error parsing regexp: unterminated character set at position 0 (checked with Python's re)"),
        ("*x", "error parsing regexp: nothing to repeat at position 0 (checked with Python's re)"),
        ("a(?=b)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
        ("(?<!a)b", "error parsing regexp: invalid or unsupported Perl syntax: `(?<!`"),
        ("(?>a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?>`"),
        ("(?#note)a", "error parsing regexp: invalid or unsupported Perl syntax: `(?#`"),
        ("(?P<n>a)(?P=n)", "error parsing regexp: invalid or unsupported Perl syntax: `(?P=`"),
        (r"(a)\1", r"error parsing regexp: invalid escape sequence: `\1`"),
        (r"a\Z", r"error parsing regexp: invalid escape sequence: `\Z`"),
        ("a*+", "error parsing regexp: invalid nested repetition operator: `*+`"),
        ("(?x)a b", "error parsing regexp: invalid or unsupported Perl syntax: `(?x)`"),
        ("a{1001}", "error parsing regexp: invalid repeat count: `{1001}`"),
        ("a{1,1001}", "error parsing regexp: invalid repeat count: `{1,1001}`"),
    ],
)
def test_paths_re2_refuses(pattern, reason):
    assert path_error(pattern) == reason
    assert ingress_errors(local(GPU, {**GPU, "path": pattern})) == [f"Rule #2 has an invalid regex: {reason}"]


def test_url_with_ingress():
    assert ingress_errors(local(GPU), url="http://localhost:8000") == [
        "You can't set the --url flag (or $TUNNEL_URL) when using multiple-origin ingress rules"
    ]
    assert ingress_errors(local(GPU, url="http://localhost:8000")) == [
        "You can't set the --url flag (or $TUNNEL_URL) when using multiple-origin ingress rules"
    ]
    assert ingress_errors(local(GPU), url="") == []


ORIGIN_REQUEST_LOCAL = {
    "connectTimeout": "30s",
    "tlsTimeout": "10s",
    "tcpKeepAlive": "1m30s",
    "noHappyEyeballs": False,
    "keepAliveConnections": 100,
    "keepAliveTimeout": "1.5m",
    "httpHostHeader": "gpu.internal",
    "originServerName": "gpu.internal",
    "matchSNItoHost": True,
    "caPool": "/etc/ssl/origin.pem",
    "noTLSVerify": False,
    "disableChunkedEncoding": False,
    "bastionMode": False,
    "proxyAddress": "127.0.0.1",
    "proxyPort": 0,
    "proxyType": "",
    "ipRules": [{"prefix": "10.0.0.0/8", "ports": [80], "allow": True}],
    "http2Origin": False,
    "access": ACCESS,
}


def as_remote(origin_request):
    durations = {"connectTimeout": 30, "tlsTimeout": 10, "tcpKeepAlive": 90, "keepAliveTimeout": 90}
    return {**origin_request, **durations}


def test_every_origin_request_key_with_the_right_types():
    assert (
        ingress_errors(local({**GPU, "originRequest": ORIGIN_REQUEST_LOCAL}, originRequest=ORIGIN_REQUEST_LOCAL)) == []
    )
    remote = as_remote(ORIGIN_REQUEST_LOCAL)
    assert (
        ingress_errors({"ingress": [{**GPU, "originRequest": remote}, CATCH_ALL], "originRequest": remote}, "remote")
        == []
    )
    assert ingress_errors(local({**GPU, "originRequest": {"connectTimeout": None}})) == []  # null = unset


@pytest.mark.parametrize("duration", ["0", "30s", "1m", "1h2m3.5s", "300ms", "10us", "10\u00b5s", "-1s", ".5s"])
def test_go_durations_accepted(duration):
    assert ingress_errors(local(GPU, originRequest={"connectTimeout": duration})) == []


@pytest.mark.parametrize("duration", ["30", "30 s", "30sec", "1d", "", "s"])
def test_go_durations_refused(duration):
    assert ingress_errors(local(GPU, originRequest={"connectTimeout": duration})) == [
        f'originRequest.connectTimeout: time: invalid duration "{duration}" (a Go duration such as 30s, 1m30s or 500ms)'
    ]


def test_local_duration_must_be_a_string():
    # yaml.v3 (cloudflared's decoder) refuses an integer for a time.Duration.
    assert ingress_errors(local({**GPU, "originRequest": {"tlsTimeout": 30}})) == [
        "Rule #1: originRequest.tlsTimeout: cannot unmarshal integer 30 into time.Duration (in a local YAML config a "
        "duration is a Go duration string such as '30s')"
    ]


@pytest.mark.parametrize("value", ["30s", 30.0, True, "30"])
def test_remote_duration_must_be_integer_seconds(value):
    config = {"ingress": [GPU, CATCH_ALL], "originRequest": {"keepAliveTimeout": value}}
    (error,) = ingress_errors(config, source="remote")
    assert error.startswith("originRequest.keepAliveTimeout: a duration in a remote (JSON) configuration is an integer")
    assert ingress_errors({**config, "originRequest": {"keepAliveTimeout": 90}}, source="remote") == []


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("noTLSVerify", "yes", "expected a boolean (true/false), got string 'yes'"),
        ("noTLSVerify", 1, "expected a boolean (true/false), got integer 1"),
        ("keepAliveConnections", "100", "expected an integer, got string '100'"),
        ("keepAliveConnections", True, "expected an integer, got boolean True"),
        ("proxyPort", -1, "expected an unsigned integer, got integer -1"),
        ("httpHostHeader", 5, "expected a string, got integer 5"),
        ("ipRules", "10.0.0.0/8", "expected a list of {prefix, ports, allow}, got string"),
        ("access", ["x"], "expected a mapping, got list"),
    ],
)
def test_origin_request_types_refused(key, value, expected):
    assert ingress_errors(local(GPU, originRequest={key: value})) == [f"originRequest.{key}: {expected}"]


def test_nested_types_refused():
    origin_request = {
        "access": {"required": "true", "audTag": "aud1", "teamname": "x"},
        "ipRules": [{"prefix": "10.0.0.0/8", "ports": ["80"], "allow": "yes"}],
    }
    errors = ingress_errors(local({**GPU, "originRequest": origin_request}))
    assert errors == [
        "Rule #1: originRequest.access.required: expected a boolean (true/false), got string 'true'",
        "Rule #1: originRequest.access.audTag: expected a list of strings, got 'aud1'",
        "Rule #1: originRequest.access: unknown key 'teamname' (known: audTag, environment, required, teamName); "
        "cloudflared would ignore it with a warning",
        "Rule #1: originRequest.ipRules[0].ports: expected a list of integers, got ['80']",
        "Rule #1: originRequest.ipRules[0].allow: expected a boolean (true/false), got string 'yes'",
    ]


def test_proxy_type_values():
    assert ingress_errors(local(GPU, originRequest={"proxyType": "socks"})) == []
    assert ingress_errors(local(GPU, originRequest={"proxyType": "http"})) == [
        "originRequest.proxyType: 'http' is not a proxy type; cloudflared knows '' and 'socks'"
    ]


def test_unknown_keys():
    rule = {**GPU, "originRequest": {"connectTimout": "30s"}, "hostnam": "x"}
    errors = ingress_errors(local(rule))
    assert errors == [
        "Rule #1: unknown key 'hostnam' (known: hostname, path, service, originRequest); cloudflared would ignore it "
        "with a warning",
        "Rule #1: originRequest: unknown key 'connectTimout' (known: access, bastionMode, caPool, connectTimeout, "
        "disableChunkedEncoding, http2Origin, httpHostHeader, ipRules, keepAliveConnections, keepAliveTimeout, "
        "matchSNItoHost, noHappyEyeballs, noTLSVerify, originServerName, proxyAddress, proxyPort, proxyType, "
        "tcpKeepAlive, tlsTimeout); cloudflared would ignore it with a warning",
    ]
    # A local file's other top-level keys are cloudflared flags (protocol, metrics, ...): not checked.
    assert ingress_errors(local(GPU, protocol="auto", metrics="127.0.0.1:2000")) == []
    # A remote configuration has only ingress, originRequest and warp-routing.
    assert ingress_errors({"ingress": [CATCH_ALL], "tunnel": TUNNEL}, source="remote") == [
        "unknown key 'tunnel' in a remote configuration (known: ingress, originRequest, warp-routing)"
    ]


def test_warp_routing():
    assert (
        ingress_errors(local(GPU, **{"warp-routing": {"enabled": True, "connectTimeout": "5s", "maxActiveFlows": 10}}))
        == []
    )
    remote = {"ingress": [CATCH_ALL], "warp-routing": {"enabled": True, "tcpKeepAlive": 30}}
    assert ingress_errors(remote, source="remote") == []
    assert ingress_errors(local(GPU, **{"warp-routing": {"enabled": "yes", "maxActiveFlows": -1}})) == [
        "warp-routing.enabled: expected a boolean (true/false), got string 'yes'",
        "warp-routing.maxActiveFlows: expected an unsigned integer, got integer -1",
    ]


def test_a_rule_that_is_not_a_mapping():
    assert ingress_errors({"ingress": ["http://localhost:8000", CATCH_ALL]}) == [
        "Rule #1: expected a mapping with a service (and hostname, path, originRequest), got string"
    ]


def test_every_problem_is_reported_in_rule_order():
    config = {
        "ingress": [
            {"hostname": "a.oceanid.example:8000", "service": "http://localhost:8000/x"},
            {"service": "http_status:404"},
            {"hostname": "c.oceanid.example", "path": "(?=x)", "service": "http://localhost:8002"},
        ]
    }
    errors = ingress_errors(config)
    assert [error.split(" ")[1].rstrip(":") for error in errors] == ["#1", "#1", "#2", "#3", "#3"]


def test_the_input_is_not_modified():
    config = local({**GPU, "originRequest": dict(ORIGIN_REQUEST_LOCAL)})
    before = copy.deepcopy(config)
    ingress_errors(config)
    assert config == before


def test_unknown_source():
    with pytest.raises(ValueError, match="source must be one of local, remote"):
        ingress_errors(local(GPU), source="json")
