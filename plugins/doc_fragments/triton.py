# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # Connection options of the modules that talk to Triton's HTTP API
    # (plugins/module_utils/triton.py, TRITON_COMMON_ARGUMENT_SPEC).
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Triton server's HTTP endpoint (KServe v2 API), with the scheme.
      - Use C(https://) for a server behind a TLS proxy or a Cloudflare tunnel; a path prefix is kept.
      - The module runs on the target host, so the default is the server on that host.
    type: str
    default: http://127.0.0.1:8000
  headers:
    description:
      - HTTP headers sent with every request, for example the C(CF-Access-Client-Id) and
        C(CF-Access-Client-Secret) headers of a Cloudflare Access service token, or the header that
        Triton's C(--http-restricted-api) expects.
      - Values are not logged.
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify the server's TLS certificate and host name when O(url) is C(https://).
    type: bool
    default: true
notes:
  - The client uses the Python standard library only (no C(tritonclient)) and honours the C(http_proxy),
    C(https_proxy) and C(no_proxy) environment variables of the module's process.
"""
