# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A throw-away test CA and a server certificate signed by it (made with ``cryptography``), for the Cloudflare
emulator's TLS side of ``CONNECT api.cloudflare.com:443``. Nothing here is a real key: a new CA per emulator
unless one is handed back in (the CLI keeps it in the 0600 state file so a restarted emulator keeps its CA)."""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Oceanid test CA (Cloudflare emulator)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca_and_server(hostname: str) -> dict[str, str]:
    """{"ca_pem", "ca_key_pem", "cert_pem", "key_pem"}: a CA and a cert for ``hostname`` signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Oceanid throw-away test CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hostname))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return {
        "ca_pem": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        "ca_key_pem": _pem_key(ca_key).decode(),
        "cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "key_pem": _pem_key(key).decode(),
    }


class TestCA:
    """The CA + server certificate; ``server_context()`` is the TLS context the emulator wraps CONNECTed sockets in."""

    __test__ = False  # not a pytest test class

    def __init__(self, hostname: str, material: dict[str, str] | None = None):
        self.hostname = hostname
        self.material = material or make_ca_and_server(hostname)
        self._context: ssl.SSLContext | None = None

    @property
    def ca_pem(self) -> bytes:
        return self.material["ca_pem"].encode()

    def server_context(self) -> ssl.SSLContext:
        if self._context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory(prefix="cf-emulator-tls-") as tmp:
                chain = os.path.join(tmp, "chain.pem")
                fd = os.open(chain, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(self.material["cert_pem"] + self.material["key_pem"])
                context.load_cert_chain(chain)
            self._context = context
        return self._context
