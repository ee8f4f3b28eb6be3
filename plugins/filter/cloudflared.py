# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the cloudflared_node role: cloudflared's ``ingress validate`` checks and the tunnel credential's
form. The logic is in plugins/module_utils/cloudflared_ingress.py and cloudflared_credentials.py (shared with
the cloudflare_tunnel module). Each filter's documentation is in plugins/filter/<filter name>.yml."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_credentials import (
    CredentialsError,
    parse_tunnel_credentials,
)
from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflared_ingress import SOURCES, ingress_errors


def cloudflared_ingress_errors(config, source="local", url=None):
    """Every reason cloudflared would refuse ``config`` (a whole config.yaml as a mapping); empty when valid."""
    if source not in SOURCES:
        raise AnsibleFilterError(
            f"cloudflared_ingress_errors: source is {source!r}; expected one of {', '.join(SOURCES)}"
        )
    return ingress_errors(config, source=source, url=url)


def cloudflared_credentials(token):
    """``{form, tunnel_id, account_tag, credentials}`` for a credentials.json (text or base64) or a TUNNEL_TOKEN."""
    try:
        return parse_tunnel_credentials(token)
    except CredentialsError as exc:
        # The message names the form and the reason, never the value (it is a secret).
        raise AnsibleFilterError(f"cloudflared_credentials: {exc}")


class FilterModule:
    """oceanid.fleet cloudflared filters."""

    def filters(self):
        return {
            "cloudflared_ingress_errors": cloudflared_ingress_errors,
            "cloudflared_credentials": cloudflared_credentials,
        }
