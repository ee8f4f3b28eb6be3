# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tunnel credential detection (module_utils/cloudflared_credentials.py): credentials.json as text, parsed or
base64, a TUNNEL_TOKEN, a cert.pem refused; no message carries the secret."""

from __future__ import annotations

import base64
import json
import os

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_credentials import (
    CERT_PEM_MESSAGE,
    CredentialsError,
    credentials_json,
    encode_tunnel_token,
    parse_tunnel_credentials,
)

ACCOUNT = "699d98642c564d2e855e9661899b7252"
TUNNEL = "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"
SECRET = base64.b64encode(os.urandom(32)).decode()
CREDENTIALS = {"AccountTag": ACCOUNT, "TunnelSecret": SECRET, "TunnelID": TUNNEL, "Endpoint": ""}
CREDENTIALS_TEXT = json.dumps(CREDENTIALS)
TOKEN = base64.b64encode(json.dumps({"a": ACCOUNT, "t": TUNNEL, "s": SECRET}).encode()).decode()

EXPECTED = {"tunnel_id": TUNNEL, "account_tag": ACCOUNT, "credentials": CREDENTIALS}

CERT_TOKEN = base64.b64encode(json.dumps({"zoneID": "z", "accountID": ACCOUNT, "apiToken": "t0ps3cret"}).encode())
CERT_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
    "-----BEGIN CERTIFICATE-----\nMIIEojCCBEigAwIBAgIUXj\n-----END CERTIFICATE-----\n"
    f"-----BEGIN ARGO TUNNEL TOKEN-----\n{CERT_TOKEN.decode()}\n-----END ARGO TUNNEL TOKEN-----\n"
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("value", "form"),
    [
        (CREDENTIALS_TEXT, "credentials_json"),
        (json.dumps(CREDENTIALS, indent=2) + "\n", "credentials_json"),  # as written to a file
        (CREDENTIALS, "credentials_json"),  # already parsed (Ansible turns JSON text into a mapping)
        (CREDENTIALS_TEXT.encode(), "credentials_json"),
        (b64(CREDENTIALS_TEXT), "credentials_json_base64"),
        (b64(CREDENTIALS_TEXT).rstrip("="), "credentials_json_base64"),  # padding lost in copy and paste
        ("\n".join([b64(CREDENTIALS_TEXT)[:40], b64(CREDENTIALS_TEXT)[40:]]) + "\n", "credentials_json_base64"),
        (TOKEN, "tunnel_token"),
        (f"  {TOKEN}\n", "tunnel_token"),
        (base64.urlsafe_b64encode(base64.b64decode(TOKEN)).decode(), "tunnel_token"),
    ],
)
def test_forms_detected(value, form):
    assert parse_tunnel_credentials(value) == {"form": form, **EXPECTED}


def test_token_endpoint_and_uppercase_id():
    token = base64.b64encode(
        json.dumps({"a": ACCOUNT, "t": TUNNEL.upper(), "s": SECRET, "e": "https://edge.example"}).encode()
    ).decode()
    result = parse_tunnel_credentials(token)
    assert result["tunnel_id"] == TUNNEL
    assert result["credentials"] == {**CREDENTIALS, "Endpoint": "https://edge.example"}


def test_round_trips():
    assert parse_tunnel_credentials(encode_tunnel_token(CREDENTIALS))["credentials"] == CREDENTIALS
    assert json.loads(credentials_json(CREDENTIALS)) == CREDENTIALS
    assert list(json.loads(credentials_json(CREDENTIALS))) == ["AccountTag", "TunnelSecret", "TunnelID", "Endpoint"]


@pytest.mark.parametrize("value", [CERT_PEM, b64(CERT_PEM), CERT_TOKEN.decode(), "-----BEGIN CERTIFICATE-----\nx\n"])
def test_cert_pem_refused(value):
    with pytest.raises(CredentialsError) as caught:
        parse_tunnel_credentials(value)
    message = str(caught.value)
    assert message == CERT_PEM_MESSAGE
    assert message.startswith("this is an origin certificate (cert.pem")
    assert "never put it on a node" in message
    assert "t0ps3cret" not in message and CERT_TOKEN.decode() not in message


def without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "the tunnel credential is empty"),
        (None, "the tunnel credential is a NoneType; expected a string"),
        (b"\xff\xfe", "the tunnel credential is binary, not text"),
        ("not a token!", "the tunnel credential is neither a credentials.json, nor base64 of one, nor a tunnel token"),
        (b64("\xff"), "the tunnel credential is base64, but not of a JSON object"),
        (base64.b64encode(b"\xff\xfe\xfd").decode(), "the tunnel credential is base64, but not of a credentials.json"),
        (b64("[1, 2]"), "the tunnel credential is base64, but not of a JSON object"),
        ('{"AccountTag": ', "the tunnel credential starts like JSON but does not parse as a JSON object"),
        ('{"hello": "world"}', "a JSON object without the keys of a credentials.json"),
        (json.dumps(without(CREDENTIALS, "TunnelSecret")), "credentials json: missing 'TunnelSecret'"),
        (b64(json.dumps(without(CREDENTIALS, "TunnelID"))), "credentials json base64: missing 'TunnelID'"),
        (b64(json.dumps({"a": ACCOUNT, "t": TUNNEL})), "tunnel token: missing 's'"),
        (json.dumps({"a": ACCOUNT, "t": TUNNEL, "s": SECRET}), "this is the decoded JSON of a tunnel token"),
        (json.dumps({**CREDENTIALS, "TunnelID": "tunnel-1"}), "credentials json: the tunnel id is not a UUID"),
        (json.dumps({**CREDENTIALS, "AccountTag": ""}), "credentials json: the account tag is empty or not a string"),
        (json.dumps({**CREDENTIALS, "TunnelSecret": "%%%"}), "credentials json: the tunnel secret is not base64"),
        (
            json.dumps({**CREDENTIALS, "TunnelSecret": 5}),
            "credentials json: the tunnel secret is missing or not a string",
        ),
        (
            json.dumps({**CREDENTIALS, "TunnelSecret": b64("short")}),
            "credentials json: the tunnel secret decodes to 5 bytes; Cloudflare tunnel secrets are at least 32",
        ),
        (json.dumps({**CREDENTIALS, "Endpoint": 3}), "credentials json: the endpoint is not a string"),
        (42, "the tunnel credential is a int; expected a string"),
    ],
)
def test_refused_without_the_secret(value, message):
    with pytest.raises(CredentialsError) as caught:
        parse_tunnel_credentials(value)
    assert str(caught.value).startswith(message)
    assert SECRET not in str(caught.value)
    if isinstance(value, str) and len(value) > 8:
        assert value not in str(caught.value)
