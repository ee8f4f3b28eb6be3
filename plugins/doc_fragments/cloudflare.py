# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # Connection and authentication options of the modules that talk to the Cloudflare v4 API
    # (plugins/module_utils/cloudflare.py, cloudflare_argument_spec()).
    DOCUMENTATION = r"""
options:
  api_token:
    description:
      - A Cloudflare API token, sent as C(Authorization) with the C(Bearer) scheme.
      - The preferred style. Give either O(api_token), or O(api_key) with O(api_email), not both.
      - If not set, the environment variable E(CLOUDFLARE_API_TOKEN) is used.
      - Not logged.
    type: str
  api_key:
    description:
      - The account's global API key, sent as C(X-Auth-Key) together with O(api_email) as C(X-Auth-Email).
      - If not set, the environment variable E(CLOUDFLARE_API_KEY) is used.
      - Not logged.
    type: str
  api_email:
    description:
      - The e-mail address of the account that owns O(api_key).
      - If not set, the environment variable E(CLOUDFLARE_EMAIL) is used.
    type: str
  api_base_url:
    description:
      - Base URL of the Cloudflare v4 API, with the scheme and the C(/client/v4) path.
      - Change it only to talk to a test server (the collection's tests use a Cloudflare emulator).
    type: str
    default: https://api.cloudflare.com/client/v4
  request_timeout:
    description:
      - Seconds to wait for each HTTP answer.
    type: float
    default: 30
  validate_certs:
    description:
      - Verify the API's TLS certificate. Keep it on outside tests.
    type: bool
    default: true
notes:
  - The client honours the E(HTTPS_PROXY) and E(NO_PROXY) environment variables and the CA bundle named by
    E(SSL_CERT_FILE) of the module's process (it uses C(ansible.module_utils.urls)).
  - A C(429 Too Many Requests) answer is retried, waiting as long as its C(Retry-After) header asks (each wait
    at most 60 seconds, at most 5 retries); a longer C(Retry-After) fails the task at once with a message
    saying so. C(502), C(503) and C(504) are retried for reads only.
  - A failed call fails the task with the method, the path, the HTTP status and every code and message of
    Cloudflare's C(errors) list.
"""
