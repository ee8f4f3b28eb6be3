# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tunnel's connector credentials in any of the forms people hand around, standard library only.

A node's tunnel credential may arrive as (the seed: "the node tunnel token can be either base64-encoded
credentials.json or a raw TUNNEL_TOKEN string", both auto-detected):

* ``credentials_json``: the text of ``<TunnelID>.json`` as ``cloudflared tunnel create`` writes it
  (``{"AccountTag", "TunnelSecret", "TunnelID", "Endpoint"}``), or that JSON already parsed into a mapping;
* ``credentials_json_base64``: standard base64 of that text;
* ``tunnel_token``: a ``TUNNEL_TOKEN`` / ``--token`` value / the result of ``GET .../cfd_tunnel/{id}/token``:
  standard base64 of compact JSON ``{"a": AccountTag, "t": TunnelID, "s": TunnelSecret[, "e": Endpoint]}``.

All three become the same ``credentials`` mapping, the content of ``/etc/cloudflared/<TunnelID>.json``.

An origin certificate (``cert.pem`` from ``cloudflared tunnel login``: PEM text, or base64 of it, or the
base64 JSON token inside its ``ARGO TUNNEL TOKEN`` block) is refused: it carries an account-wide API
token that can create and delete tunnels and DNS records, and has no place on a node.

No message raised here contains the input or the secret: only the form detected, key names and the
tunnel id.
"""

import base64
import binascii
import json
import uuid

FORMS = ("credentials_json", "credentials_json_base64", "tunnel_token")
CREDENTIAL_KEYS = ("AccountTag", "TunnelSecret", "TunnelID", "Endpoint")
TOKEN_KEYS = {"a": "AccountTag", "s": "TunnelSecret", "t": "TunnelID", "e": "Endpoint"}
MIN_SECRET_BYTES = 32

CERT_PEM_MESSAGE = (
    "this is an origin certificate (cert.pem, from 'cloudflared tunnel login'), not a tunnel credential: it holds "
    "an account-wide API token that can create and delete tunnels and DNS records; never put it on a node. Give the "
    "tunnel's token (GET .../cfd_tunnel/<id>/token, or the oceanid.fleet.cloudflare_tunnel module's tunnel_token) "
    "or its credentials.json instead"
)
# Keys of the JSON inside cert.pem's "ARGO TUNNEL TOKEN" block.
_CERT_TOKEN_KEYS = ("zoneID", "accountID", "apiToken")


class CredentialsError(ValueError):
    """The value is not a usable tunnel credential; the message names why, never the value."""


def _is_pem(text):
    return "-----BEGIN " in text


def _b64decode(text):
    """Bytes of standard or URL-safe base64 (padding optional); None when ``text`` is not base64."""
    compact = "".join(text.split())
    if not compact:
        return None
    padded = compact + "=" * (-len(compact) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _json_object(text):
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _check_secret(secret, where):
    if not isinstance(secret, str) or not secret:
        raise CredentialsError("%s: the tunnel secret is missing or not a string" % where)
    raw = _b64decode(secret)
    if raw is None:
        raise CredentialsError("%s: the tunnel secret is not base64" % where)
    if len(raw) < MIN_SECRET_BYTES:
        raise CredentialsError(
            "%s: the tunnel secret decodes to %d bytes; Cloudflare tunnel secrets are at least %d"
            % (where, len(raw), MIN_SECRET_BYTES)
        )


def _normalise(values, form):
    """Check the long-key credentials mapping ``values`` and return the parsed result for ``form``."""
    where = "%s" % form.replace("_", " ")
    missing = [key for key in CREDENTIAL_KEYS[:3] if key not in values]
    if missing:
        if form == "tunnel_token":
            missing = [short for short, long in TOKEN_KEYS.items() if long in missing]
        raise CredentialsError("%s: missing %s" % (where, ", ".join(repr(key) for key in missing)))
    account_tag = values["AccountTag"]
    if not isinstance(account_tag, str) or not account_tag:
        raise CredentialsError("%s: the account tag is empty or not a string" % where)
    try:
        tunnel_id = str(uuid.UUID(str(values["TunnelID"])))
    except ValueError:
        raise CredentialsError("%s: the tunnel id is not a UUID" % where)
    _check_secret(values["TunnelSecret"], where)
    endpoint = values.get("Endpoint") or ""
    if not isinstance(endpoint, str):
        raise CredentialsError("%s: the endpoint is not a string" % where)
    return {
        "form": form,
        "tunnel_id": tunnel_id,
        "account_tag": account_tag,
        "credentials": {
            "AccountTag": account_tag,
            "TunnelSecret": values["TunnelSecret"],
            "TunnelID": tunnel_id,
            "Endpoint": endpoint,
        },
    }


def _from_mapping(value, form_if_credentials, form_if_token):
    """Parse a decoded JSON object: credentials.json keys, token keys, or cert.pem's token (refused)."""
    if any(key in value for key in _CERT_TOKEN_KEYS):
        raise CredentialsError(CERT_PEM_MESSAGE)
    if any(key in value for key in CREDENTIAL_KEYS[:3]):
        return _normalise(value, form_if_credentials)
    if any(key in value for key in ("a", "t", "s")):
        if form_if_token is None:
            raise CredentialsError(
                "this is the decoded JSON of a tunnel token ({a, t, s}); give the token itself (its base64), "
                "or the tunnel's credentials.json"
            )
        return _normalise({long: value[short] for short, long in TOKEN_KEYS.items() if short in value}, form_if_token)
    raise CredentialsError(
        "a JSON object without the keys of a credentials.json (AccountTag, TunnelSecret, TunnelID) or of a tunnel "
        "token (a, t, s)"
    )


def parse_tunnel_credentials(value):
    """Detect the form of ``value`` and return ``{form, tunnel_id, account_tag, credentials}``.

    ``credentials`` is ``{AccountTag, TunnelSecret, TunnelID, Endpoint}``, what cloudflared reads from
    ``--credentials-file``. Raises ``CredentialsError`` (message without the secret) for anything else,
    with a specific message for an origin certificate (cert.pem).
    """
    if isinstance(value, dict):
        return _from_mapping(value, "credentials_json", None)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialsError("the tunnel credential is binary, not text")
    if not isinstance(value, str):
        raise CredentialsError("the tunnel credential is a %s; expected a string" % type(value).__name__)
    text = value.strip()
    if not text:
        raise CredentialsError("the tunnel credential is empty")
    if _is_pem(text):
        raise CredentialsError(CERT_PEM_MESSAGE)
    if text.startswith("{"):
        mapping = _json_object(text)
        if mapping is None:
            raise CredentialsError("the tunnel credential starts like JSON but does not parse as a JSON object")
        return _from_mapping(mapping, "credentials_json", None)
    raw = _b64decode(text)
    if raw is None:
        raise CredentialsError(
            "the tunnel credential is neither a credentials.json, nor base64 of one, nor a tunnel token (base64 JSON)"
        )
    try:
        decoded = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialsError("the tunnel credential is base64, but not of a credentials.json or a tunnel token")
    if _is_pem(decoded):
        raise CredentialsError(CERT_PEM_MESSAGE)
    mapping = _json_object(decoded)
    if mapping is None:
        raise CredentialsError("the tunnel credential is base64, but not of a JSON object")
    return _from_mapping(mapping, "credentials_json_base64", "tunnel_token")


def encode_tunnel_token(credentials):
    """The TUNNEL_TOKEN for a credentials mapping ``{AccountTag, TunnelSecret, TunnelID[, Endpoint]}``."""
    token = {"a": credentials["AccountTag"], "t": credentials["TunnelID"], "s": credentials["TunnelSecret"]}
    if credentials.get("Endpoint"):
        token["e"] = credentials["Endpoint"]
    return base64.b64encode(json.dumps(token, separators=(",", ":")).encode("utf-8")).decode("ascii")


def credentials_json(credentials):
    """The text of ``<TunnelID>.json`` for a credentials mapping, in cloudflared's key order."""
    return json.dumps({key: credentials.get(key, "") for key in CREDENTIAL_KEYS})
