# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module_utils client against the real Label Studio: access-token refresh and pagination."""

from __future__ import annotations

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio import (
    TOKEN_PAT,
    LabelStudioClient,
    LabelStudioError,
)


def test_personal_access_token_is_refreshed_when_expired_and_on_401(label_studio):
    client = LabelStudioClient(label_studio.url, label_studio.create_personal_access_token())
    assert client.token_kind == TOKEN_PAT
    client.list_projects()
    first = client._access
    assert first
    # Expired by the clock: a new access token before the request.
    client._access_exp = 0
    client.list_projects()
    assert client._access and client._access_exp > 0
    # Refused by the server (revoked, or expired early): one refresh and the request again.
    client._access = first[:-4] + "AAAA"
    client._access_exp = 1e12
    client.list_projects()
    assert client._access != first[:-4] + "AAAA"


def test_pagination_and_exact_title(label_studio):
    client = LabelStudioClient(label_studio.url, label_studio.token)
    base = "page-test"
    existing = {p["id"] for p in client.list_projects()}
    needed = max(0, 101 - len(existing))
    for n in range(needed):
        client.create_project({"title": "%s %03d" % (base, n)})
    everything = client.list_projects()
    assert len(everything) >= 101 and len({p["id"] for p in everything}) == len(everything)
    client.create_project({"title": "Page-Test"})
    assert [p["title"] for p in client.find_projects("Page-Test")] == ["Page-Test"]
    with pytest.raises(LabelStudioError) as failure:
        client.get_project(10**8)
    assert failure.value.status == 404 and "not found" in str(failure.value)
