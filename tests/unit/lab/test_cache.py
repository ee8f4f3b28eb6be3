# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for the lab's package cache (lab/cache.py): the servers' configuration, what a host is given,
the apt proxy script's choice (run for real against a socket on loopback), and the caches' statistics.

No root and no lab: every directory points into tmp_path, and mirror names are documentation names.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from lab import cache, mirrors
from lab import settings as lab_settings

ENV = ("CACHE_DIR", "STATE_DIR", "RUN_DIR", "SUBNET", "BRIDGE", "PREFIX", "SUITE", "USER")
CACHE_ENV = ("PACKAGE_CACHE", "APT_CACHE_PORT", "PIP_CACHE_PORT")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    for name in ENV + CACHE_ENV:
        monkeypatch.delenv(f"OCEANID_LAB_{name}", raising=False)
    for name in ("CACHE_DIR", "STATE_DIR", "RUN_DIR"):
        monkeypatch.setenv(f"OCEANID_LAB_{name}", str(tmp_path / name.lower()))
    return lab_settings.load()


def _mirrors(pip_index_url: str | None = None) -> mirrors.Mirrors:
    return mirrors.Mirrors(
        apt=[
            mirrors.AptSource(["deb"], ["http://deb.mirror.example/debian"], ["bookworm"], ["main"]),
            mirrors.AptSource(["deb"], ["http://deb.mirror.example/debian-security"], ["bookworm-security"], ["main"]),
            mirrors.AptSource(["deb"], ["https://tls.mirror.example/apt"], ["stable"], ["main"]),
            mirrors.AptSource(["deb-src"], ["http://src.mirror.example/debian"], ["bookworm"], ["main"]),
            mirrors.AptSource(["deb"], ["http://second.mirror.example/debian"], ["bookworm"], ["main"]),
        ],
        pip_index_url=pip_index_url,
    )


# --- settings -------------------------------------------------------------------------------------


def test_cache_settings_defaults(settings):
    assert settings.package_cache is True
    assert (settings.apt_cache_port, settings.pip_cache_port) == (3143, 3144)
    assert cache.url(settings, "apt") == "http://10.77.0.1:3143"
    assert cache.url(settings, "pip") == "http://10.77.0.1:3144"
    # Under the lab's cache directory (kept across `lab down`), never under the run directory.
    assert cache.packages_dir(settings) == settings.cache_dir / "packages"
    assert cache.run_dir(settings) == settings.run_dir / "cache"


@pytest.mark.parametrize("value", ["0", "no", "off", "false", "OFF"])
def test_cache_can_be_switched_off(settings, monkeypatch, value):  # pylint: disable=unused-argument
    monkeypatch.setenv("OCEANID_LAB_PACKAGE_CACHE", value)
    off = lab_settings.load()
    assert off.package_cache is False
    assert cache.ensure(off, _mirrors()) == {"apt": False, "pip": False}
    assert not cache.run_dir(off).exists()


def test_cache_ports_from_the_environment(settings, monkeypatch):  # pylint: disable=unused-argument
    monkeypatch.setenv("OCEANID_LAB_APT_CACHE_PORT", "4000")
    monkeypatch.setenv("OCEANID_LAB_PIP_CACHE_PORT", "4001")
    monkeypatch.setenv("OCEANID_LAB_SUBNET", "10.9.8.0/24")
    other = lab_settings.load()
    assert cache.url(other, "apt") == "http://10.9.8.1:4000"
    assert cache.url(other, "pip") == "http://10.9.8.1:4001"


# --- apt -------------------------------------------------------------------------------------------


def test_apt_mirror_hosts_are_the_plain_http_deb_sources_once_each():
    assert cache.apt_mirror_hosts(_mirrors()) == ["deb.mirror.example", "second.mirror.example"]


def test_apt_config_binds_the_bridge_and_serves_the_mirrors_only(settings):
    text = cache.apt_config(settings, ["deb.mirror.example", "second.mirror.example"])
    lines = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line and not line.startswith("#"))
    assert lines["BindAddress"] == "10.77.0.1"
    assert lines["Port"] == "3143"
    assert lines["ForeGround"] == "1"
    assert lines["CacheDir"] == str(settings.cache_dir / "packages" / "apt" / "cache")
    assert lines["LogDir"] == str(settings.cache_dir / "packages" / "apt" / "log")
    assert lines["SocketPath"].startswith(str(settings.run_dir))
    # Managed: only the remapped mirrors, and no CONNECT tunnels.
    assert lines["ForceManaged"] == "1"
    assert lines["PassThroughPattern"] == "^$"
    assert lines["Remap-olab0"] == "deb.mirror.example ; http://deb.mirror.example"
    assert lines["Remap-olab1"] == "second.mirror.example ; http://second.mirror.example"


def test_apt_host_conf_names_the_script():
    assert f'Acquire::http::Proxy-Auto-Detect "{cache.APT_PROXY_SCRIPT}";' in cache.apt_host_conf()


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


def _run_script(path: Path, site: str) -> str:
    return subprocess.run(["sh", str(path), site], capture_output=True, text=True, check=True, timeout=10).stdout


def test_apt_proxy_script_names_the_cache_for_mirrors_when_it_answers(settings, listener, tmp_path):
    loopback = replace(settings, subnet=ipaddress.IPv4Network("127.0.0.0/24"))
    loopback = replace(loopback, apt_cache_port=listener.getsockname()[1])
    script = tmp_path / "apt-proxy"
    script.write_text(cache.apt_proxy_script(loopback, ["deb.mirror.example", "second.mirror.example"]))
    expected = f"http://127.0.0.1:{listener.getsockname()[1]}\n"
    assert _run_script(script, "http://deb.mirror.example") == expected
    assert _run_script(script, "http://second.mirror.example:80/debian/") == expected
    # Not a mirror the cache serves: apt goes there itself.
    assert _run_script(script, "http://elsewhere.example") == "DIRECT\n"
    assert _run_script(script, "http://deb.mirror.example.elsewhere.example") == "DIRECT\n"


def test_apt_proxy_script_falls_back_to_direct_when_the_cache_is_down(settings, listener, tmp_path):
    port = listener.getsockname()[1]
    listener.close()  # nothing answers on that port now
    loopback = replace(settings, subnet=ipaddress.IPv4Network("127.0.0.0/24"), apt_cache_port=port)
    script = tmp_path / "apt-proxy"
    script.write_text(cache.apt_proxy_script(loopback, ["deb.mirror.example"]))
    assert _run_script(script, "http://deb.mirror.example") == "DIRECT\n"


def test_apt_log_counts(tmp_path):
    (tmp_path / "apt-cacher.log").write_text(
        "1796425177|I|53344|10.77.0.14|olab0/debian/pool/main/h/hello/hello_2.10-3_amd64.deb\n"
        "1796425177|O|53313|10.77.0.14|olab0/debian/pool/main/h/hello/hello_2.10-3_amd64.deb\n"
        "1796425332|O|53313|10.77.0.15|olab0/debian/pool/main/h/hello/hello_2.10-3_amd64.deb\n"
        "1796425340|E|679|10.77.0.15|elsewhere.example/ [HTTP error, code: 500]\n"
        "a line of another shape\n"
    )
    assert cache.apt_log_counts(tmp_path) == {"served": 2, "fetched": 1, "fetched_bytes": 53344, "errors": 1}


# --- pip -------------------------------------------------------------------------------------------


def test_pip_conf_without_a_cache_is_the_base_image_one():
    assert cache.pip_conf(None) == "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
    assert cache.pip_conf("https://index.example/simple").endswith("index-url = https://index.example/simple\n")


def test_pip_host_conf_points_at_the_proxy(settings):
    text = cache.pip_host_conf(settings)
    assert "index-url = http://10.77.0.1:3144/index/\n" in text
    assert "trusted-host = 10.77.0.1\n" in text  # plain http on the bridge
    assert "cert = /etc/ssl/certs/ca-certificates.crt\n" in text
    assert f"timeout = {cache.HOST_PIP_TIMEOUT}\n" in text


def test_pip_upstream_is_the_machine_index_or_pip_default(monkeypatch):
    monkeypatch.setattr(mirrors, "pip_default_index_url", lambda: "https://default.example/simple")
    assert cache.pip_upstream(_mirrors("https://corp.example/pypi/simple")) == "https://corp.example/pypi/simple/"
    assert cache.pip_upstream(_mirrors(None)) == "https://default.example/simple/"
    monkeypatch.setattr(mirrors, "pip_default_index_url", lambda: None)
    with pytest.raises(cache.LabError):
        cache.pip_upstream(_mirrors(None))


def test_pip_env_serves_files_from_the_cache_only(settings):
    env = cache.pip_env(settings, "https://corp.example/pypi/simple/")
    assert env["PROXPI_INDEX_URL"] == "https://corp.example/pypi/simple/"
    assert env["PROXPI_CACHE_DIR"] == str(settings.cache_dir / "packages" / "pip" / "files")
    # proxpi redirects a host to the upstream file when a download outlasts this: hosts wait less than pip's timeout.
    assert 0 < float(env["PROXPI_DOWNLOAD_TIMEOUT"]) < cache.HOST_PIP_TIMEOUT


def test_write_configs_says_what_changed(settings, monkeypatch):
    monkeypatch.setattr(mirrors, "pip_default_index_url", lambda: "https://default.example/simple")
    cache.run_dir(settings).mkdir(parents=True)
    assert cache._write_configs(settings, _mirrors()) == {"apt": False, "pip": False}  # pylint: disable=protected-access
    assert cache._write_configs(settings, _mirrors()) == {"apt": False, "pip": False}  # pylint: disable=protected-access
    fewer = _mirrors()
    fewer.apt = fewer.apt[:1]
    assert cache._write_configs(settings, fewer) == {"apt": True, "pip": False}  # pylint: disable=protected-access
    spec = json.loads((cache.run_dir(settings) / "pip.json").read_text())
    assert spec["env"]["PROXPI_INDEX_URL"] == "https://default.example/simple/"


# --- a host --------------------------------------------------------------------------------------


def test_configure_host_with_both_caches(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(mirrors, "read", _mirrors)
    root = tmp_path / "root"
    cache.configure_host(settings, root, {"apt": True, "pip": True})
    script = root / cache.APT_PROXY_SCRIPT.lstrip("/")
    assert script.stat().st_mode & 0o777 == 0o755
    assert "deb.mirror.example second.mirror.example" in script.read_text()
    assert "Proxy-Auto-Detect" in (root / cache.APT_PROXY_CONF.lstrip("/")).read_text()
    assert (root / "etc/pip.conf").read_text() == cache.pip_host_conf(settings)


def test_configure_host_without_caches_restores_the_direct_settings(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(mirrors, "read", lambda: _mirrors("https://corp.example/pypi/simple"))
    root = tmp_path / "root"
    cache.configure_host(settings, root, {"apt": True, "pip": True})
    cache.configure_host(settings, root, {"apt": False, "pip": False})
    assert not (root / cache.APT_PROXY_SCRIPT.lstrip("/")).exists()
    assert not (root / cache.APT_PROXY_CONF.lstrip("/")).exists()
    assert (root / "etc/pip.conf").read_text() == cache.pip_conf("https://corp.example/pypi/simple")


# --- the pip proxy's statistics --------------------------------------------------------------------


class _FakeFileCache:
    def __init__(self, directory: Path):
        self.directory = directory

    def _download_file(self, file_url: str, path: str):
        if "missing" not in file_url:
            Path(path).write_bytes(b"x" * 10)


class _FakeCache:
    def __init__(self, directory: Path):
        self.file_cache = _FakeFileCache(directory)

    def get_file(self, package_name: str, file_name: str) -> str:
        if package_name == "slow":
            return f"https://files.example/{file_name}"  # proxpi's redirect to upstream
        return str(self.file_cache.directory / file_name)


def test_instrument_counts_fetches_and_serves(tmp_path):
    fake = _FakeCache(tmp_path)
    stats = cache.PipStats(tmp_path / "stats.json", tmp_path / "events.log")
    cache.instrument(fake, stats)
    fake.file_cache._download_file("https://files.example/p/a-1.whl", str(tmp_path / "a-1.whl"))  # pylint: disable=protected-access
    fake.file_cache._download_file("https://files.example/p/missing.whl", str(tmp_path / "missing.whl"))  # pylint: disable=protected-access
    fake.get_file("a", "a-1.whl")
    fake.get_file("a", "a-1.whl")
    fake.get_file("slow", "s-1.whl")
    counts = json.loads((tmp_path / "stats.json").read_text())
    assert counts == {"served": 2, "redirected": 1, "fetched": 1, "fetched_bytes": 10, "fetch_failed": 1}
    events = [line.split("|") for line in (tmp_path / "events.log").read_text().splitlines()]
    assert [e[1] for e in events] == ["fetch", "fetch-failed", "serve", "serve", "redirect"]
    assert events[0][4] == "/p/a-1.whl" and events[2][4] == "a/a-1.whl"
    # Counts survive a restart of the proxy.
    assert cache.PipStats(tmp_path / "stats.json", tmp_path / "events.log").counts == counts


def test_status_of_an_empty_cache(settings, monkeypatch):
    monkeypatch.setattr(cache, "answering", lambda *args, **kwargs: False)
    result = {entry["kind"]: entry for entry in cache.status(settings)}
    assert set(result) == {"apt", "pip"}
    for entry in result.values():
        assert entry["running"] is False and entry["size_bytes"] == 0 and entry["hits"] == 0
