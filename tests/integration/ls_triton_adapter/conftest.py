# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the adapter's integration tests: a real tritonserver serving docling_granite_python (one per test
module) and adapters started on it (stopped after each test)."""

from __future__ import annotations

import pytest

from tests.integration.ls_triton_adapter.adapter_helpers import AdapterProcess, serve_docling


@pytest.fixture(name="triton", scope="module")
def fixture_triton(tmp_path_factory):
    server = serve_docling(tmp_path_factory.mktemp("triton"), instance_count=2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="start_adapter")
def fixture_start_adapter(tmp_path):
    started = []

    def start(triton_url: str, **settings: str) -> AdapterProcess:
        adapter = AdapterProcess(tmp_path, triton_url, **settings)
        started.append(adapter)
        return adapter

    yield start
    for adapter in started:
        adapter.stop()
