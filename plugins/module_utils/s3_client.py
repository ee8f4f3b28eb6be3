# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The S3 client of the model transfer engine: endpoint, credentials, SigV4 signing and a lean HTTP client.

Standard library only; botocore, when importable, is used for nothing but the AWS credential chain
(instance profiles, SSO, config files). Used by the s3_model_* modules and, installed beside it as a plain
module, by the model puller on GPU hosts.
"""

import datetime
import hashlib
import hmac
import http.client
import os
import random
import ssl
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_RETRY_STATUS = (500, 502, 503, 504)
_REFUSED_STATUS = (401, 403)


class TransferError(Exception):
    """A transfer failed; the message says what, where, and what was expected."""


class SourceError(TransferError):
    """The object store could not be read or written (unreachable, denied, missing object)."""


# --------------------------------------------------------------------------------------------------
# Credentials and endpoint
# --------------------------------------------------------------------------------------------------


class S3Endpoint:
    """Where the object store is and who we are there.

    endpoint_url: ``http(s)://host[:port]`` of an S3-compatible server; empty for AWS S3 in ``region``.
    Credentials not given here come from the environment or, when botocore is installed, its chain.
    """

    def __init__(
        self,
        endpoint_url=None,
        region=None,
        access_key=None,
        secret_key=None,
        session_token=None,
        verify_tls=True,
        ca_bundle=None,
        addressing_style="auto",
    ):
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.endpoint_url = (endpoint_url or "https://s3.%s.amazonaws.com" % self.region).rstrip("/")
        parsed = urllib.parse.urlsplit(self.endpoint_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise TransferError("endpoint_url %r must look like http(s)://host[:port]" % endpoint_url)
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.base_path = parsed.path.rstrip("/")
        self.verify_tls = verify_tls
        self.ca_bundle = ca_bundle
        if addressing_style == "auto":
            addressing_style = "virtual" if endpoint_url is None else "path"
        self.addressing_style = addressing_style
        self.access_key, self.secret_key, self.session_token = resolve_credentials(
            access_key, secret_key, session_token
        )

    def host_header(self, bucket):
        default_port = (self.scheme == "https" and self.port == 443) or (self.scheme == "http" and self.port == 80)
        host = self.host if default_port else "%s:%d" % (self.host, self.port)
        return "%s.%s" % (bucket, host) if self.addressing_style == "virtual" else host

    def path(self, bucket, key=""):
        quoted = urllib.parse.quote(key, safe="/~")
        if self.addressing_style == "virtual":
            return "%s/%s" % (self.base_path, quoted)
        return "%s/%s/%s" % (self.base_path, bucket, quoted) if key else "%s/%s" % (self.base_path, bucket)


def resolve_credentials(access_key=None, secret_key=None, session_token=None):
    """Explicit keys, then AWS_* environment variables, then botocore's chain (profiles, instance roles)."""
    if access_key and secret_key:
        return access_key, secret_key, session_token
    if access_key or secret_key:
        raise TransferError(
            "give both access_key and secret_key, or neither (to use the environment or an instance profile)"
        )
    env_key, env_secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if env_key and env_secret:
        return env_key, env_secret, os.environ.get("AWS_SESSION_TOKEN")
    try:
        import botocore.session  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise TransferError(
            "no S3 credentials: set access_key/secret_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(install botocore to use profiles and instance roles)"
        )
    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise TransferError("no S3 credentials found in options, environment, AWS profiles or instance metadata")
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


# --------------------------------------------------------------------------------------------------
# A lean, thread-safe S3 client: SigV4 over keep-alive connections, one per thread
# --------------------------------------------------------------------------------------------------


def _quote(value):
    return urllib.parse.quote(value, safe="-_.~")


class S3Response:
    """Status, headers and (unless streamed) the body of one request."""

    def __init__(self, status, headers, body=b""):
        self.status = status
        self.headers = headers
        self.body = body


class S3Client:
    """Signs and sends S3 requests; retries transport errors and 5xx with backoff; counts what it sends."""

    def __init__(self, endpoint, max_connections=32, retries=4, timeout=60.0, backoff=0.25):
        self.endpoint = endpoint
        self.retries, self.timeout, self.backoff = retries, timeout, backoff
        self.max_connections = max_connections
        self._local = threading.local()
        self._lock = threading.Lock()
        self._signing_keys = {}
        self.stats = {"GET": 0, "HEAD": 0, "PUT": 0, "POST": 0, "LIST": 0, "DELETE": 0}
        self.bytes_received = 0
        self.bytes_sent = 0
        if endpoint.scheme == "https":
            self._ssl = ssl.create_default_context(cafile=endpoint.ca_bundle)
            if not endpoint.verify_tls:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        else:
            self._ssl = None

    # -- connections ---------------------------------------------------------------------------
    def _connection(self, bucket):
        host = self.endpoint.host_header(bucket).split(":")[0]
        pool = getattr(self._local, "connections", None)
        if pool is None:
            pool = self._local.connections = {}
        conn = pool.get(host)
        if conn is None:
            if self._ssl is not None:
                conn = http.client.HTTPSConnection(host, self.endpoint.port, timeout=self.timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(host, self.endpoint.port, timeout=self.timeout)
            pool[host] = conn
        return conn

    def _drop_connection(self, bucket):
        host = self.endpoint.host_header(bucket).split(":")[0]
        conn = getattr(self._local, "connections", {}).pop(host, None)
        if conn is not None:
            conn.close()

    # -- signing -------------------------------------------------------------------------------
    def _signing_key(self, date):
        key = self._signing_keys.get(date)
        if key is None:
            key = ("AWS4" + self.endpoint.secret_key).encode()
            for part in (date, self.endpoint.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._signing_keys[date] = key
        return key

    def _sign(self, method, bucket, path, query, headers, payload_hash):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers["host"] = self.endpoint.host_header(bucket)
        headers["x-amz-date"] = amz_date
        headers["x-amz-content-sha256"] = payload_hash
        if self.endpoint.session_token:
            headers["x-amz-security-token"] = self.endpoint.session_token
        names = sorted(name.lower() for name in headers)
        lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
        canonical_query = "&".join("%s=%s" % (_quote(k), _quote(v)) for k, v in sorted(query.items()))
        canonical = "\n".join(
            [
                method,
                path,
                canonical_query,
                "".join("%s:%s\n" % (n, lowered[n]) for n in names),
                ";".join(names),
                payload_hash,
            ]
        )
        scope = "%s/%s/s3/aws4_request" % (date, self.endpoint.region)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self._signing_key(date), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
            self.endpoint.access_key,
            scope,
            ";".join(names),
            signature,
        )
        return canonical_query

    # -- requests ------------------------------------------------------------------------------
    def request(
        self,
        method,
        bucket,
        key="",
        query=None,
        headers=None,
        body=b"",
        payload_hash=None,
        sink=None,
        kind=None,
        expect=(200,),
    ):
        """Send one request (with retries). ``sink(response)`` consumes a streamed body instead of reading it.

        Returns an S3Response; raises SourceError for anything not in ``expect`` after retries.
        """
        query = dict(query or {})
        path = self.endpoint.path(bucket, key)
        kind = kind or method
        if payload_hash is None:
            payload_hash = (
                hashlib.sha256(body).hexdigest() if body else (EMPTY_SHA256 if method != "GET" else UNSIGNED_PAYLOAD)
            )
        last_error = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))
            send_headers = dict(headers or {})
            canonical_query = self._sign(method, bucket, path, query, send_headers, payload_hash)
            target = path + ("?" + canonical_query if canonical_query else "")
            with self._lock:
                self.stats[kind] = self.stats.get(kind, 0) + 1
                self.bytes_sent += len(body)
            conn = self._connection(bucket)
            try:
                conn.request(method, target, body=body if body else None, headers=send_headers)
                response = conn.getresponse()
                if response.status in _RETRY_STATUS:
                    response.read()
                    last_error = "HTTP %d" % response.status
                    continue
                if response.status not in expect:
                    raise SourceError(self._refusal(method, bucket, key, response.status, response.read()))
                if sink is not None and method != "HEAD":
                    sink(response)
                    return S3Response(response.status, response.headers)
                data = response.read()
                with self._lock:
                    self.bytes_received += len(data)
                return S3Response(response.status, response.headers, data)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection(bucket)
                last_error = "%s: %s" % (type(exc).__name__, exc)
            except BaseException:
                self._drop_connection(bucket)  # a body may be half read
                raise
        raise SourceError(
            "%s %s/%s on %s failed after %d attempts: %s"
            % (method, bucket, key, self.endpoint.endpoint_url, self.retries + 1, last_error)
        )

    def _refusal(self, method, bucket, key, status, data):
        """The message for an answer not expected; a HEAD answer has no body to tell why."""
        where = "%s %s/%s on %s: HTTP %d" % (method, bucket, key, self.endpoint.endpoint_url, status)
        detail = _s3_error(data) if data else ""
        if status in _REFUSED_STATUS:
            return (
                "%s%s: the server refused the credentials or the signature (access key %s, region %s): check "
                "the access and secret keys, the region and this host's clock"
                % (
                    where,
                    " " + detail if detail else "",
                    self.endpoint.access_key,
                    self.endpoint.region,
                )
            )
        return "%s %s" % (where, detail) if detail else where

    def count_received(self, nbytes):
        with self._lock:
            self.bytes_received += nbytes

    # -- S3 operations ---------------------------------------------------------------------------
    def head(self, bucket, key):
        """Object headers, or None when the object does not exist."""
        response = self.request("HEAD", bucket, key, expect=(200, 404))
        return None if response.status == 404 else response.headers

    def bucket_exists(self, bucket):
        """True when the bucket exists (HEAD of the bucket; 404 means it does not)."""
        return self.request("HEAD", bucket, "", expect=(200, 404)).status == 200

    def get(self, bucket, key, missing_ok=False):
        response = self.request("GET", bucket, key, expect=(200, 404) if missing_ok else (200,))
        return None if response.status == 404 else response.body

    def put(self, bucket, key, body, content_type=None, sha256=None):
        headers = {"Content-Type": content_type} if content_type else {}
        return self.request(
            "PUT", bucket, key, headers=headers, body=body, payload_hash=sha256 or hashlib.sha256(body).hexdigest()
        )

    def delete(self, bucket, key):
        self.request("DELETE", bucket, key, kind="DELETE", expect=(200, 204, 404))

    def list_objects(self, bucket, prefix):
        """Every object under ``prefix``: {key: {"size", "etag", "last_modified"}}."""
        objects, token = {}, None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self.request("GET", bucket, "", query=query, kind="LIST").body)
            for item in root.iter(S3_NS + "Contents"):
                key = item.findtext(S3_NS + "Key")
                objects[key] = {
                    "size": int(item.findtext(S3_NS + "Size") or 0),
                    "etag": (item.findtext(S3_NS + "ETag") or "").strip('"'),
                    "last_modified": item.findtext(S3_NS + "LastModified"),
                }
            if (root.findtext(S3_NS + "IsTruncated") or "false").lower() != "true":
                return objects
            token = root.findtext(S3_NS + "NextContinuationToken")

    def close(self):
        for conn in getattr(self._local, "connections", {}).values():
            conn.close()


def _s3_error(data):
    try:
        root = ET.fromstring(data)
        return "%s: %s" % (root.findtext("Code"), root.findtext("Message"))
    except ET.ParseError:
        return data[:200].decode("utf-8", "replace")
