# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""LabelStudioClient over a fake HTTP layer: token detection, access-token refresh, pagination, error messages."""

from __future__ import annotations

import base64
import io
import json
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio import (
    TOKEN_LEGACY,
    TOKEN_PAT,
    LabelStudioClient,
    LabelStudioError,
    LabelStudioUnreachable,
    detect_token_kind,
    format_validation_errors,
    validate_url,
)

NOW = 1_800_000_000.0
URL = "http://ls.test:8080"
LEGACY = "0123456789abcdef0123456789abcdef01234567"


def jwt(**claims) -> str:
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return "%s.%s.%s" % (part({"alg": "HS256", "typ": "JWT"}), part(claims), "c2lnbmF0dXJl")


PAT = jwt(token_type="refresh", exp=NOW + 10**9, user_id="1", jti="a")


class Response:
    def __init__(self, status, raw):
        self.status, self.raw = status, raw

    def getcode(self):
        return self.status

    def read(self):
        return self.raw

    def close(self):
        pass


class FakeOpener:
    """Answers from a list of handlers ``fn(method, path, query, headers, body) -> (status, body)``, in order;
    records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def open(self, request, timeout=None):
        parts = urlsplit(request.full_url)
        body = json.loads(request.data) if request.data else None
        headers = {k.lower(): v for k, v in request.header_items()}
        entry = {
            "method": request.get_method(),
            "path": parts.path,
            "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
            "headers": headers,
            "body": body,
        }
        self.requests.append(entry)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, payload = answer(**entry) if callable(answer) else answer
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode() if payload is not None else b""
        if status >= 400:
            raise HTTPError(request.full_url, status, "error", {}, io.BytesIO(raw))
        return Response(status, raw)


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def client(opener, token=LEGACY, clock=None):
    return LabelStudioClient(URL, token, opener=opener, clock=clock or Clock(), sleep=lambda s: None)


def envelope(status, detail, validation_errors=None):
    body = {"id": "x", "status_code": status, "version": "1.23.2", "detail": detail, "exc_info": None}
    if validation_errors is not None:
        body["validation_errors"] = validation_errors
    return status, body


# -- tokens --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        (LEGACY, TOKEN_LEGACY),
        ("not.a.jwt", TOKEN_LEGACY),
        (PAT, TOKEN_PAT),
        ("  %s\n" % PAT, TOKEN_PAT),
    ],
)
def test_token_kind_is_detected_like_the_sdk(token, kind):
    assert detect_token_kind(token.strip(), now=NOW) == kind


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "empty"),
        (jwt(token_type="refresh"), "without an expiry"),
        (jwt(token_type="refresh", exp=NOW - 1), "expired"),
        (jwt(token_type="access", exp=NOW + 300), "type 'access'"),
    ],
)
def test_unusable_jwts_are_refused_before_any_request(token, message):
    with pytest.raises(ValueError, match=message):
        detect_token_kind(token, now=NOW)
    opener = FakeOpener()
    with pytest.raises(ValueError):
        client(opener, token)
    assert opener.requests == []


def test_legacy_token_is_sent_as_token():
    opener = FakeOpener((200, {"count": 0, "next": None, "results": []}))
    client(opener).list_projects()
    assert opener.requests[0]["headers"]["authorization"] == "Token " + LEGACY


def test_personal_access_token_is_exchanged_cached_and_refreshed_on_expiry():
    clock = Clock()
    access1, access2 = jwt(token_type="access", exp=NOW + 300), jwt(token_type="access", exp=NOW + 700)
    opener = FakeOpener(
        (200, {"access": access1}),
        (200, []),
        (200, []),
        (200, {"access": access2}),
        (200, []),
    )
    c = client(opener, PAT, clock)
    c.list_ml_backends(1)
    c.list_ml_backends(1)  # cached
    clock.now = NOW + 290  # within the safety margin of exp: refreshed first
    c.list_ml_backends(1)
    paths = [(r["method"], r["path"]) for r in opener.requests]
    assert paths == [
        ("POST", "/api/token/refresh/"),
        ("GET", "/api/ml/"),
        ("GET", "/api/ml/"),
        ("POST", "/api/token/refresh/"),
        ("GET", "/api/ml/"),
    ]
    assert opener.requests[0]["body"] == {"refresh": PAT}
    assert "authorization" not in opener.requests[0]["headers"]
    assert opener.requests[1]["headers"]["authorization"] == "Bearer " + access1
    assert opener.requests[4]["headers"]["authorization"] == "Bearer " + access2


def test_a_401_refreshes_once_and_retries():
    access1, access2 = jwt(token_type="access", exp=NOW + 300), jwt(token_type="access", exp=NOW + 300, jti="2")
    opener = FakeOpener(
        (200, {"access": access1}),
        envelope(401, "Given token not valid for any token type"),
        (200, {"access": access2}),
        (200, {"id": 3}),
    )
    assert client(opener, PAT).get_project(3) == {"id": 3}
    assert opener.requests[3]["headers"]["authorization"] == "Bearer " + access2


def test_a_second_401_fails_naming_the_token_kind_not_the_token():
    access = jwt(token_type="access", exp=NOW + 300)
    opener = FakeOpener(
        (200, {"access": access}),
        envelope(401, "nope"),
        (200, {"access": access}),
        envelope(401, "nope"),
    )
    with pytest.raises(LabelStudioError) as failure:
        client(opener, PAT).get_project(3)
    message = str(failure.value)
    assert failure.value.status == 401 and "personal access token" in message and URL in message
    assert PAT not in message and access not in message


def test_a_refused_refresh_fails_clearly():
    opener = FakeOpener(envelope(401, "Token is invalid"))
    with pytest.raises(LabelStudioError) as failure:
        client(opener, PAT).get_project(3)
    assert "POST %s/api/token/refresh/ answered HTTP 401" % URL in str(failure.value)
    assert "personal access token" in str(failure.value) and "Token is invalid" in str(failure.value)
    assert PAT not in str(failure.value)


def test_disabled_legacy_tokens_get_a_hint():
    opener = FakeOpener(
        envelope(401, "Authentication token no longer valid: legacy token authentication has been disabled")
    )
    with pytest.raises(LabelStudioError) as failure:
        client(opener).list_projects()
    assert "legacy token" in str(failure.value) and "use a personal access token" in str(failure.value)
    assert LEGACY not in str(failure.value)


# -- pagination ----------------------------------------------------------------------------------------------


def test_projects_are_read_across_pages_and_titles_matched_exactly():
    def page(method, path, query, headers, body):
        number = int(query["page"])
        assert query["page_size"] == "100" and query["title"] == "NER"
        results = {
            1: [{"id": 1, "title": "NER"}, {"id": 2, "title": "NER_Data"}],
            2: [{"id": 3, "title": "ner"}, {"id": 4, "title": "NER"}],
        }[number]
        return 200, {"count": 4, "next": "http://elsewhere/?page=2" if number == 1 else None, "results": results}

    opener = FakeOpener(page, page)
    assert [p["id"] for p in client(opener).find_projects("NER")] == [1, 4]
    assert len(opener.requests) == 2


def test_resolve_project_by_id_title_and_ambiguity():
    listing = (200, {"count": 2, "next": None, "results": [{"id": 5, "title": "A"}, {"id": 9, "title": "A"}]})
    assert client(FakeOpener((200, {"id": 7, "title": "x"}))).resolve_project("7")["id"] == 7
    with pytest.raises(LabelStudioError, match=r"2 projects titled 'A' \(ids 5, 9\)"):
        client(FakeOpener(listing)).resolve_project("A")
    with pytest.raises(LabelStudioError, match="no project titled 'B'") as failure:
        client(FakeOpener((200, {"count": 0, "next": None, "results": []}))).resolve_project("B")
    assert failure.value.status == 404


# -- errors and paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            envelope(400, "Validation error", {"label_config": ["unclosed token: line 1, column 6"]}),
            "rejected the request: label_config: unclosed token: line 1, column 6",
        ),
        ((400, {"label_config": ["bad"]}), "rejected the request: label_config: bad"),
        (
            envelope(400, "Validation error", {"non_field_errors": ['Can\'t connect. <a href="x">Learn more</a>']}),
            "rejected the request: Can't connect. Learn more",
        ),
        (
            envelope(403, "URL resolves to a reserved network address (block: 127.0.0.0/8)"),
            "blocked by Label Studio's SSRF protection",
        ),
        (envelope(403, "You do not have permission to perform this action."), "not permitted"),
        (envelope(404, "Not found."), "not found: Not found."),
        (envelope(500, "Can't resolve hostname nowhere.invalid"), "server error: Can't resolve hostname"),
        ((502, b"<html>bad gateway</html>"), "server error: <html>bad gateway</html>"),
    ],
)
def test_error_messages_say_what_failed(answer, expected):
    opener = FakeOpener(*([answer] * 3))
    with pytest.raises(LabelStudioError) as failure:
        client(opener).create_ml_backend({"url": "http://b", "project": 1})
    assert expected in str(failure.value)
    assert str(failure.value).startswith("Label Studio POST %s/api/ml/ answered HTTP %d" % (URL, answer[0]))
    assert failure.value.status == answer[0] and failure.value.method == "POST" and failure.value.path == "/api/ml/"


def test_validation_errors_are_kept_field_by_field():
    errors = {"title": ["Ensure this field has at least 3 characters."], "non_field_errors": ["bad"]}
    opener = FakeOpener(envelope(400, "Validation error", errors))
    with pytest.raises(LabelStudioError) as failure:
        client(opener).create_project({"title": "ab"})
    assert failure.value.validation_errors == errors and failure.value.detail == "Validation error"
    assert format_validation_errors(errors) == "bad | title: Ensure this field has at least 3 characters."


def test_429_and_503_are_retried_a_little():
    opener = FakeOpener((429, b""), (503, b""), (200, {"id": 1}))
    assert client(opener).get_project(1) == {"id": 1}
    opener = FakeOpener((503, b""), (503, b""), (503, b""))
    with pytest.raises(LabelStudioError, match="HTTP 503"):
        client(opener).get_project(1)
    assert len(opener.requests) == 3


def test_no_answer_is_unreachable():
    opener = FakeOpener(URLError(ConnectionRefusedError(111, "Connection refused")))
    with pytest.raises(LabelStudioUnreachable) as failure:
        client(opener).get_project(1)
    assert failure.value.status is None and "Connection refused" in str(failure.value) and URL in str(failure.value)


def test_exact_paths():
    opener = FakeOpener(*[(200, {})] * 4, *[(204, None)] * 2)
    c = client(opener)
    c.update_ml_backend(4, {"url": "http://b", "project": 1})
    c.update_webhook(5, {"url": "http://w"})
    c.get_project(6)
    c.validate_label_config("<View/>")
    c.delete_ml_backend(4)
    c.delete_webhook(5)
    assert [(r["method"], r["path"]) for r in opener.requests] == [
        ("PATCH", "/api/ml/4"),
        ("PATCH", "/api/webhooks/5/"),
        ("GET", "/api/projects/6/"),
        ("POST", "/api/projects/validate/"),
        ("DELETE", "/api/ml/4"),
        ("DELETE", "/api/webhooks/5/"),
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8080", None),
        ("https://labels.example.com/prefix/", None),
        ("ftp://x", "must be http"),
        ("http://x:99999", "not a valid URL"),
        ("http://x/?a=1", "query"),
        ("", "non-empty"),
    ],
)
def test_validate_url(url, problem):
    found = validate_url(url)
    assert (found is None) if problem is None else (problem in found)
