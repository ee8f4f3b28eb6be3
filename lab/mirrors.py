"""The package mirrors this machine itself uses, read at run time.

Nothing here names a registry: apt's sources and pip's configuration on the machine are the only
truth, so a lab on another network (a corporate mirror, an air-gapped proxy) follows them as is.
The lab gives its hosts egress to exactly these hosts and nothing else.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .util import LabError

APT_SOURCES = [Path("/etc/apt/sources.list")]
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")


@dataclass
class AptSource:
    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]
    signed_by: str | None = None


@dataclass
class Mirrors:
    apt: list[AptSource] = field(default_factory=list)
    pip_index_url: str | None = None
    pip_hosts: list[str] = field(default_factory=list)

    @property
    def hostnames(self) -> list[str]:
        names: list[str] = []
        for source in self.apt:
            for uri in source.uris:
                host = urlsplit(uri).hostname
                if host and host not in names:
                    names.append(host)
        for host in self.pip_hosts:
            if host not in names:
                names.append(host)
        return names

    def debootstrap_mirror(self, suite: str) -> str:
        for source in self.apt:
            if "deb" in source.types and suite in source.suites and "main" in source.components:
                return source.uris[0]
        raise LabError(
            f"no apt source on this machine serves '{suite} main' (looked in "
            f"{APT_SOURCES[0]} and {APT_SOURCES_DIR}/*.list|*.sources)"
        )

    def apt_sources_for(self, suite: str) -> str:
        """deb822 sources for a host of this suite: the machine's own entries for that release."""
        blocks = []
        for source in self.apt:
            suites = [s for s in source.suites if s == suite or s.startswith(f"{suite}-")]
            if not suites or "deb" not in source.types:
                continue
            block = [
                "Types: deb",
                f"URIs: {' '.join(source.uris)}",
                f"Suites: {' '.join(suites)}",
                f"Components: {' '.join(source.components)}",
            ]
            if source.signed_by and source.signed_by.startswith("/usr/share/keyrings/debian-archive"):
                block.append(f"Signed-By: {source.signed_by}")
            blocks.append("\n".join(block))
        return "# Written by the oceanid lab from the machine's own apt sources.\n\n" + "\n\n".join(blocks) + "\n"


def _parse_one_line(text: str) -> list[AptSource]:
    sources = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"^(deb|deb-src)\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if not match:
            continue
        options = match.group(2) or ""
        signed = re.search(r"signed-by=(\S+?)\]?(\s|$)", options)
        sources.append(
            AptSource(
                [match.group(1)],
                [match.group(3)],
                [match.group(4)],
                match.group(5).split(),
                signed.group(1).rstrip("]") if signed else None,
            )
        )
    return sources


def _parse_deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            if ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() in ("no", "false", "off") or "uris" not in fields:
            continue
        sources.append(
            AptSource(
                fields.get("types", "deb").split(),
                fields["uris"].split(),
                fields.get("suites", "").split(),
                fields.get("components", "").split(),
                fields.get("signed-by"),
            )
        )
    return sources


def read_apt_sources() -> list[AptSource]:
    sources: list[AptSource] = []
    for path in APT_SOURCES:
        if path.is_file():
            sources += _parse_one_line(path.read_text())
    if APT_SOURCES_DIR.is_dir():
        for path in sorted(APT_SOURCES_DIR.iterdir()):
            # apt reads only these two suffixes; "*.disabled" and the like are not sources.
            if path.suffix == ".list":
                sources += _parse_one_line(path.read_text())
            elif path.suffix == ".sources":
                sources += _parse_deb822(path.read_text())
    return sources


def _pip_config_files() -> list[Path]:
    home = Path.home()
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", home / ".config" / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return files


def _pip_default_hosts() -> list[str]:
    """pip's built-in index and file host, asked from pip itself rather than written here."""
    code = "from pip._internal.models.index import PyPI as p; print(p.netloc); print(p.file_storage_domain)"
    for python in (sys.executable, "python3"):
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return proc.stdout.split()
    return []


def pip_default_index_url() -> str | None:
    """pip's built-in index (its simple API), asked from pip itself rather than written here."""
    code = "from pip._internal.models.index import PyPI as p; print(p.simple_url)"
    for python in (sys.executable, "python3"):
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return None


def read_pip_config() -> tuple[str | None, list[str]]:
    # Raw, as pip reads it: a '%' in a percent-encoded URL is not interpolation.
    parser = configparser.RawConfigParser()
    parser.read([str(p) for p in _pip_config_files()])
    index_url = (
        os.environ.get("PIP_INDEX_URL")
        or parser.get("global", "index-url", fallback=None)
        or parser.get("install", "index-url", fallback=None)
    )
    extra = (os.environ.get("PIP_EXTRA_INDEX_URL") or parser.get("global", "extra-index-url", fallback="")).split()
    hosts: list[str] = []
    if index_url:
        hosts.append(urlsplit(index_url).hostname or "")
    else:
        hosts += _pip_default_hosts()
    for url in extra:
        # file:// indexes on the machine's disk cannot be reached from a host.
        if urlsplit(url).scheme in ("http", "https"):
            hosts.append(urlsplit(url).hostname or "")
    remote_index = index_url if index_url and urlsplit(index_url).scheme in ("http", "https") else None
    return remote_index, [h for h in hosts if h]


def read() -> Mirrors:
    index_url, pip_hosts = read_pip_config()
    return Mirrors(apt=read_apt_sources(), pip_index_url=index_url, pip_hosts=pip_hosts)


def resolve(hostnames: list[str]) -> dict[str, list[str]]:
    """IPv4 addresses of each mirror, resolved by the machine (hosts get them in /etc/hosts)."""
    resolved: dict[str, list[str]] = {}
    for name in hostnames:
        try:
            infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
        except socket.gaierror:
            continue
        resolved[name] = sorted({info[4][0] for info in infos})
    return resolved
