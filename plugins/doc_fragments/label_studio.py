# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # Connection options of the modules that talk to Label Studio's REST API
    # (plugins/module_utils/label_studio.py, LABEL_STUDIO_COMMON_ARGUMENT_SPEC).
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of Label Studio, with the scheme, for example C(http://127.0.0.1:8080); a path prefix is kept.
      - If not set, the environment variable E(LABEL_STUDIO_URL) of the module's process is used.
    type: str
    required: true
  api_token:
    description:
      - "The API token of a Label Studio user: a legacy token (sent as C(Authorization: Token ...)) or a personal
        access token, told apart the way C(label-studio-sdk) does it (a JWT with an expiry is a personal access
        token)."
      - A personal access token is a refresh token; it is exchanged at C(POST /api/token/refresh/) for an access
        token of a few minutes, which is renewed when it expires and once more when Label Studio refuses it.
      - Legacy tokens work only where the organization enables them (C(LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true)).
      - If not set, the environment variable E(LABEL_STUDIO_API_KEY) is used. Never logged nor shown in messages.
    type: str
    required: true
  request_timeout:
    description:
      - Seconds to wait for each answer of Label Studio.
    type: float
    default: 30
  validate_certs:
    description:
      - Verify Label Studio's TLS certificate and host name when O(url) is C(https://).
    type: bool
    default: true
notes:
  - The client uses the Python standard library only (no C(label-studio-sdk)) and honours the C(http_proxy),
    C(https_proxy) and C(no_proxy) environment variables of the module's process.
  - Written against Label Studio 1.23.2's API.
"""
