"""The lab's package cache: apt and pip for lab hosts, served on the bridge address, filled on first use.

Two servers run on the machine while lab hosts run, each kept up by a small supervisor of the lab's own
(`python3 -m lab _cache apt|pip`, which restarts its server if it exits):

  apt  Debian's apt-cacher-ng with a configuration of the lab's own: bound to the bridge address only,
       and managed (ForceManaged) so that it fetches from the machine's own plain-http apt mirrors and
       refuses every other site (one Remap per mirror host).
  pip  proxpi, a caching proxy of the machine's pip index (pip's own default when the machine sets none).
       It answers a file request only once the whole file is in its cache (pip checks the index's hash).

Hosts started while a server answers are pointed at it (written into the host's own overlay, never into
the shared base image): apt through ``Acquire::http::Proxy-Auto-Detect``, a script that names the cache
for the mirrors it serves when it answers and says DIRECT otherwise, and pip through /etc/pip.conf. The
egress rules do not change: hosts may still reach the mirrors themselves.

What is cached lives under ``<cache_dir>/packages`` and survives `lab down` (like the base image);
`python3 -m lab cache clear` empties it. Nothing here names a registry: the mirrors come from lab.mirrors.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import mirrors
from .settings import Settings
from .util import LabError, log, spawn_in_background, write_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent
KINDS = ("apt", "pip")
READY_TIMEOUT = 30.0
# A server that exits this many times in a row within RAPID_EXIT seconds of its start is given up.
MAX_RAPID_EXITS = 5
RAPID_EXIT = 10.0
# Files apt-cacher-ng and proxpi keep (proxpi evicts the least used files beyond this).
PIP_CACHE_SIZE = 20 * 1024**3
# pip on a host waits this long for an answer: the proxy answers a file it has not cached yet only once it
# has fetched all of it (a 55 MB wheel on a slow uplink takes longer than pip's default 15 s).
HOST_PIP_TIMEOUT = 300
APT_PROXY_SCRIPT = "/usr/local/lib/oceanid-lab/apt-proxy"
APT_PROXY_CONF = "/etc/apt/apt.conf.d/01oceanid-lab-cache"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


# --- where things live ---------------------------------------------------------------------------


def packages_dir(settings: Settings) -> Path:
    """Everything cached, for every kind: kept across `lab down`, emptied by `lab cache clear`."""
    return settings.cache_dir / "packages"


def apt_cache_dir(settings: Settings) -> Path:
    return packages_dir(settings) / "apt" / "cache"


def apt_log_dir(settings: Settings) -> Path:
    return packages_dir(settings) / "apt" / "log"


def pip_files_dir(settings: Settings) -> Path:
    # proxpi takes every file under its directory for a cached package file: nothing else goes there.
    return packages_dir(settings) / "pip" / "files"


def pip_stats_file(settings: Settings) -> Path:
    return packages_dir(settings) / "pip" / "stats.json"


def pip_events_file(settings: Settings) -> Path:
    return packages_dir(settings) / "pip" / "events.log"


def run_dir(settings: Settings) -> Path:
    return settings.run_dir / "cache"


def port(settings: Settings, kind: str) -> int:
    return settings.apt_cache_port if kind == "apt" else settings.pip_cache_port


def url(settings: Settings, kind: str) -> str:
    return f"http://{settings.gateway}:{port(settings, kind)}"


# --- configuration -------------------------------------------------------------------------------


def apt_mirror_hosts(found: mirrors.Mirrors) -> list[str]:
    """Hosts of the machine's plain-http apt sources (https ones pass by the cache, as apt cannot proxy them)."""
    names: list[str] = []
    for source in found.apt:
        if "deb" not in source.types:
            continue
        for uri in source.uris:
            parts = urlsplit(uri)
            if parts.scheme == "http" and parts.hostname and parts.hostname not in names:
                names.append(parts.hostname)
    return names


def apt_config(settings: Settings, mirror_hosts: list[str]) -> str:
    lines = [
        "# Written by the oceanid lab at every `lab up` (lab/cache.py); not the machine's own apt-cacher-ng.",
        f"CacheDir: {apt_cache_dir(settings)}",
        f"LogDir: {apt_log_dir(settings)}",
        "SupportDir: /usr/lib/apt-cacher-ng",
        f"BindAddress: {settings.gateway}",
        f"Port: {settings.apt_cache_port}",
        "ForeGround: 1",
        f"SocketPath: {run_dir(settings) / 'apt.socket'}",
        "VerboseLog: 1",
        "UnbufferLogs: 1",
        # Only the mirrors below; no CONNECT tunnels: the cache widens no host's reach.
        "ForceManaged: 1",
        "PassThroughPattern: ^$",
        "ExThreshold: 30",
    ]
    for index, host in enumerate(mirror_hosts):
        lines.append(f"Remap-{settings.prefix}{index}: {host} ; http://{host}")
    return "\n".join(lines) + "\n"


def apt_proxy_script(settings: Settings, mirror_hosts: list[str]) -> str:
    """apt runs this once per http site (its one argument is the site's URI) and uses what it prints."""
    hosts = " ".join(mirror_hosts)
    return f"""#!/bin/sh
# Written by the oceanid lab at host start (lab/cache.py): the lab's apt cache for the mirrors it serves,
# when it answers; DIRECT otherwise (the host may reach the mirrors itself).
site=${{1#*://}}
site=${{site%%[/:]*}}
for mirror in {hosts}; do
  if [ "$site" = "$mirror" ]; then
    if timeout 2 bash -c ': > /dev/tcp/{settings.gateway}/{settings.apt_cache_port}' 2>/dev/null; then
      echo {url(settings, "apt")}
      exit 0
    fi
    break
  fi
done
echo DIRECT
"""


def apt_host_conf() -> str:
    return (
        "// Written by the oceanid lab at host start: the lab's package cache where it serves (see the script).\n"
        f'Acquire::http::Proxy-Auto-Detect "{APT_PROXY_SCRIPT}";\n'
    )


def pip_conf(index_url: str | None = None, trusted_host: str | None = None) -> str:
    """A host's /etc/pip.conf (also read by pip inside virtualenvs): the system CA bundle and the index."""
    text = "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
    if index_url:
        text += f"index-url = {index_url}\n"
    if trusted_host:
        text += f"trusted-host = {trusted_host}\ntimeout = {HOST_PIP_TIMEOUT}\n"
    return text


def pip_host_conf(settings: Settings) -> str:
    return pip_conf(f"{url(settings, 'pip')}/index/", str(settings.gateway))


def pip_upstream(found: mirrors.Mirrors) -> str:
    upstream = found.pip_index_url or mirrors.pip_default_index_url()
    if not upstream:
        raise LabError("no pip index: the machine's pip configuration names none and pip's default is unknown")
    return upstream.rstrip("/") + "/"


def pip_env(settings: Settings, upstream: str) -> dict[str, str]:
    env = {
        "PROXPI_INDEX_URL": upstream,
        "PROXPI_CACHE_DIR": str(pip_files_dir(settings)),
        "PROXPI_CACHE_SIZE": str(PIP_CACHE_SIZE),
        # Serve a file only from the cache: wait for the whole download instead of redirecting to upstream.
        "PROXPI_DOWNLOAD_TIMEOUT": str(HOST_PIP_TIMEOUT - 30),
        "PROXPI_CONNECT_TIMEOUT": "10",
        "PROXPI_READ_TIMEOUT": "60",
        "PROXPI_INDEX_TTL": "1800",
    }
    if SYSTEM_CA_BUNDLE.is_file():
        # The machine may reach its index through a TLS-inspecting gateway: trust what the machine trusts.
        env["REQUESTS_CA_BUNDLE"] = str(SYSTEM_CA_BUNDLE)
    return env


# --- the servers ---------------------------------------------------------------------------------


def _server_command(settings: Settings, kind: str) -> tuple[list[str], dict[str, str]]:
    if kind == "apt":
        return ["apt-cacher-ng", "-c", str(run_dir(settings) / "apt")], dict(os.environ)
    spec = json.loads((run_dir(settings) / "pip.json").read_text())
    return [sys.executable, "-m", "lab", "_pip_proxy"], {**os.environ, **spec["env"]}


def _available(kind: str) -> str | None:
    """Why the server for kind cannot run here, or None."""
    if kind == "apt" and not shutil.which("apt-cacher-ng"):
        return "apt-cacher-ng is not installed (make deps)"
    # The supervisor runs proxpi on this same Python.
    if kind == "pip" and importlib.util.find_spec("proxpi") is None:
        return "proxpi is not installed (make venv)"
    return None


def _supervisor_pid(settings: Settings, kind: str) -> int | None:
    try:
        pid = (run_dir(settings) / f"{kind}.pid").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ValueError):
        return None
    return int(pid) if b"_cache" in cmdline and kind.encode() in cmdline else None


def answering(settings: Settings, kind: str, timeout: float = 1.0) -> bool:
    # Only while the bridge address is this machine's: without the bridge, a connection to it leaves through the
    # default route, and a network that intercepts outgoing connections (this project's machines) accepts it.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((str(settings.gateway), 0))
    except OSError:
        return False
    try:
        with socket.create_connection((str(settings.gateway), port(settings, kind)), timeout=timeout):
            return True
    except OSError:
        return False


def _write_configs(settings: Settings, found: mirrors.Mirrors) -> dict[str, bool]:
    """Write each server's configuration; say which changed (a running server is restarted for it)."""
    changed = {}
    apt_dir = run_dir(settings) / "apt"
    texts = {
        apt_dir / "acng.conf": apt_config(settings, apt_mirror_hosts(found)),
        run_dir(settings) / "pip.json": json.dumps(
            {"env": pip_env(settings, pip_upstream(found)), "port": settings.pip_cache_port}, indent=2
        ),
    }
    for (path, text), kind in zip(texts.items(), KINDS, strict=True):
        old = path.read_text() if path.exists() else None
        if old != text:
            write_atomic(path, text)
        changed[kind] = old is not None and old != text
    return changed


def _start(settings: Settings, kind: str) -> int:
    directory = run_dir(settings)
    return spawn_in_background(
        [sys.executable, "-m", "lab", "_cache", kind], directory / f"{kind}.log", directory / f"{kind}.pid", REPO_ROOT
    )


def _stop_one(settings: Settings, kind: str, timeout: float = 15.0) -> None:
    pid = _supervisor_pid(settings, kind)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _supervisor_pid(settings, kind) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if _supervisor_pid(settings, kind) is not None:
            os.killpg(pid, signal.SIGKILL)  # the supervisor leads its own session: it and its server
    (run_dir(settings) / f"{kind}.pid").unlink(missing_ok=True)


def enabled(settings: Settings) -> bool:
    return settings.package_cache


def ensure(settings: Settings, found: mirrors.Mirrors) -> dict[str, bool]:
    """Start the cache servers that do not run (idempotent); say which answer on the bridge now.

    Called by `up` under the lab's lock, after the bridge exists (the servers bind its address)."""
    if not enabled(settings):
        return dict.fromkeys(KINDS, False)
    for directory in (apt_cache_dir(settings), apt_log_dir(settings), pip_files_dir(settings), run_dir(settings)):
        directory.mkdir(parents=True, exist_ok=True)
    changed = _write_configs(settings, found)
    waiting = []
    for kind in KINDS:
        reason = _available(kind)
        if reason:
            log(f"package cache ({kind}): not started: {reason}; hosts use the mirrors directly")
            continue
        running = _supervisor_pid(settings, kind) is not None
        if running and (changed[kind] or not answering(settings, kind)):
            # A new mirror list, or a server that lost its address (the bridge was made again): start afresh.
            _stop_one(settings, kind)
            running = False
        if not running:
            _start(settings, kind)
        waiting.append(kind)
    deadline = time.monotonic() + READY_TIMEOUT
    ready = dict.fromkeys(KINDS, False)
    for kind in waiting:
        while not answering(settings, kind) and time.monotonic() < deadline:
            if _supervisor_pid(settings, kind) is None:
                break
            time.sleep(0.2)
        ready[kind] = answering(settings, kind)
        if not ready[kind]:
            log(
                f"package cache ({kind}): not answering at {url(settings, kind)}; hosts started now use the "
                f"mirrors directly (see {run_dir(settings) / f'{kind}.log'})"
            )
    return ready


def stop(settings: Settings) -> None:
    """Stop both servers (the last `down`); what they cached stays."""
    for kind in KINDS:
        _stop_one(settings, kind)
    shutil.rmtree(run_dir(settings), ignore_errors=True)


def clear(settings: Settings) -> None:
    """Empty the cache: stop the servers, remove what they cached (the next `up` starts them again)."""
    stop(settings)
    shutil.rmtree(packages_dir(settings), ignore_errors=True)


def configure_host(settings: Settings, root: Path, ready: dict[str, bool]) -> None:
    """Point a host (its overlay root, before it boots) at the caches that answer, or at the mirrors."""
    script, conf = root / APT_PROXY_SCRIPT.lstrip("/"), root / APT_PROXY_CONF.lstrip("/")
    if ready.get("apt"):
        hosts = apt_mirror_hosts(mirrors.read())
        write_atomic(script, apt_proxy_script(settings, hosts), mode=0o755)
        write_atomic(conf, apt_host_conf())
    else:
        conf.unlink(missing_ok=True)
        script.unlink(missing_ok=True)
    if ready.get("pip"):
        write_atomic(root / "etc/pip.conf", pip_host_conf(settings))
    else:
        found = mirrors.read()
        write_atomic(root / "etc/pip.conf", pip_conf(found.pip_index_url))


def supervise(settings: Settings, kind: str) -> int:
    """Run in the background by `up`: keep one cache server running until `down` stops it."""
    stopping = False
    child: subprocess.Popen | None = None

    def _stop(_signum, _frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    rapid_exits, code = 0, 0
    while not stopping:
        command, env = _server_command(settings, kind)
        started = time.monotonic()
        child = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        code = child.wait()
        if stopping:
            break
        rapid_exits = rapid_exits + 1 if time.monotonic() - started < RAPID_EXIT else 0
        if rapid_exits >= MAX_RAPID_EXITS:
            print(
                f"lab: the {kind} cache exited {rapid_exits} times in a row (last code {code}); giving up", flush=True
            )
            break
        print(f"lab: the {kind} cache exited with {code}; starting it again", flush=True)
        time.sleep(min(2**rapid_exits, 30))
    return code


# --- the pip proxy's own process -----------------------------------------------------------------


class PipStats:
    """What the pip proxy served from its cache and what it fetched upstream, kept across restarts."""

    def __init__(self, stats: Path, events: Path):
        self.stats, self.events, self.lock = stats, events, threading.Lock()
        try:
            self.counts = json.loads(stats.read_text())
        except (FileNotFoundError, ValueError):
            self.counts = {}
        for key in ("served", "redirected", "fetched", "fetched_bytes", "fetch_failed"):
            self.counts.setdefault(key, 0)

    def record(self, event: str, what: str, size: int = 0, seconds: float | None = None) -> None:
        with self.lock:
            key = {"serve": "served", "redirect": "redirected", "fetch": "fetched", "fetch-failed": "fetch_failed"}
            self.counts[key[event]] += 1
            if event == "fetch":
                self.counts["fetched_bytes"] += size
            write_atomic(self.stats, json.dumps(self.counts))
            line = f"{time.time():.3f}|{event}|{size}|{'' if seconds is None else f'{seconds:.2f}'}|{what}\n"
            with open(self.events, "a") as handle:
                handle.write(line)


def instrument(cache, stats: PipStats) -> None:
    """Count, around proxpi's own cache object, every file served and every file fetched upstream."""
    files = cache.file_cache
    download, get_file = files._download_file, cache.get_file  # pylint: disable=protected-access

    def counted_download(file_url: str, path: str):
        started = time.monotonic()
        try:
            download(file_url, path)
        finally:
            seconds = time.monotonic() - started
            if os.path.exists(path):
                stats.record("fetch", urlsplit(file_url).path, os.path.getsize(path), seconds)
            else:
                stats.record("fetch-failed", urlsplit(file_url).path, 0, seconds)

    def counted_get_file(package_name: str, file_name: str) -> str:
        where = get_file(package_name, file_name)
        scheme = urlsplit(where).scheme
        stats.record("redirect" if scheme and scheme != "file" else "serve", f"{package_name}/{file_name}")
        return where

    files._download_file = counted_download  # pylint: disable=protected-access
    cache.get_file = counted_get_file


def serve_pip(settings: Settings) -> int:
    """`python3 -m lab _pip_proxy`, run by the pip cache's supervisor with proxpi's settings in the environment."""
    from proxpi import server  # imported here: it reads its settings from the environment at import
    from werkzeug.serving import run_simple

    instrument(server.cache, PipStats(pip_stats_file(settings), pip_events_file(settings)))
    run_simple(str(settings.gateway), settings.pip_cache_port, server.app, threaded=True)
    return 0


# --- status --------------------------------------------------------------------------------------


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def apt_log_counts(log_dir: Path) -> dict[str, int]:
    """apt-cacher-ng's transfer log: 'I' lines are fetched from a mirror, 'O' lines served to a host."""
    counts = {"served": 0, "fetched": 0, "fetched_bytes": 0, "errors": 0}
    for path in sorted(log_dir.glob("apt-cacher*.log")):
        for line in path.read_text(errors="replace").splitlines():
            fields = line.split("|")
            if len(fields) < 5:
                continue
            if fields[1] == "O":
                counts["served"] += 1
            elif fields[1] == "I":
                counts["fetched"] += 1
                counts["fetched_bytes"] += int(fields[2]) if fields[2].isdigit() else 0
            elif fields[1] == "E":
                counts["errors"] += 1
    return counts


def status(settings: Settings) -> list[dict]:
    result = []
    for kind in KINDS:
        if kind == "apt":
            counts = apt_log_counts(apt_log_dir(settings))
            size = _du(apt_cache_dir(settings))
        else:
            try:
                counts = json.loads(pip_stats_file(settings).read_text())
            except (FileNotFoundError, ValueError):
                counts = {"served": 0, "fetched": 0, "fetched_bytes": 0}
            size = _du(pip_files_dir(settings))
        result.append(
            {
                "kind": kind,
                "url": url(settings, kind),
                "running": _supervisor_pid(settings, kind) is not None,
                "answering": answering(settings, kind),
                "directory": str(packages_dir(settings) / kind),
                "size_bytes": size,
                # Served without a fetch: what hosts got from the machine instead of a mirror.
                "hits": max(0, counts.get("served", 0) - counts.get("fetched", 0)),
                **counts,
            }
        )
    return result
