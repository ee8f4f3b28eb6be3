"""The lab's network: a bridge in a /24 of its own, one namespace per host, egress to the mirrors only.

iptables layout (every chain and jump carries the lab's prefix, so `down` removes exactly them):
  filter FORWARD     -> <P>-FORWARD  hosts to hosts, replies, mirrors on TCP 80/443; all else dropped
  filter INPUT       -> <P>-INPUT    hosts may reach the machine on the bridge address only
  nat    POSTROUTING -> <P>-NAT      masquerade what leaves through the machine's uplink
The DROP rules' packet counters are the "dropped and counted" figure that `lab status` prints.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from .settings import Settings
from .util import run

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def netns_name(settings: Settings, host: str) -> str:
    return f"{settings.prefix}-{host}"


def veth_name(settings: Settings, address: ipaddress.IPv4Address) -> str:
    # Interface names are at most 15 characters: name the machine's end by the host's index in the subnet.
    return f"{settings.prefix}v{int(address) - int(settings.subnet.network_address)}"


def _iptables(*args: str, table: str = "filter", check: bool = True):
    return run(["iptables", "-w", "5", "-t", table, *args], check=check)


def _has_rule(table: str, chain: str, *rule: str) -> bool:
    return _iptables("-C", chain, *rule, table=table, check=False).returncode == 0


def _ensure_chain(table: str, chain: str, parent: str) -> None:
    if _iptables("-n", "-L", chain, table=table, check=False).returncode != 0:
        _iptables("-N", chain, table=table)
    if not _has_rule(table, parent, "-j", chain):
        _iptables("-I", parent, "1", "-j", chain, table=table)


def ensure_bridge(settings: Settings, mirror_ips: list[str]) -> None:
    gateway = f"{settings.gateway}/{settings.subnet.prefixlen}"
    if run(["ip", "link", "show", settings.bridge], check=False).returncode != 0:
        run(["ip", "link", "add", settings.bridge, "type", "bridge"])
    if gateway not in run(["ip", "-4", "-o", "addr", "show", "dev", settings.bridge]).stdout:
        run(["ip", "addr", "add", gateway, "dev", settings.bridge])
    run(["ip", "link", "set", settings.bridge, "up"])
    state = settings.run_dir / "ip_forward.before"
    if not state.exists():
        state.write_text(IP_FORWARD.read_text())
    IP_FORWARD.write_text("1\n")
    _write_rules(settings, mirror_ips)


def _write_rules(settings: Settings, mirror_ips: list[str]) -> None:
    subnet = str(settings.subnet)
    forward, inbound, nat = settings.chain("FORWARD"), settings.chain("INPUT"), settings.chain("NAT")
    for table, chain, parent in (
        ("filter", forward, "FORWARD"),
        ("filter", inbound, "INPUT"),
        ("nat", nat, "POSTROUTING"),
    ):
        _ensure_chain(table, chain, parent)
        # Rebuilt from scratch on every `up`: the mirrors' addresses may have changed.
        _iptables("-F", chain, table=table)
    bridge = settings.bridge
    _iptables("-A", forward, "-o", bridge, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
    _iptables("-A", forward, "-i", bridge, "-o", bridge, "-j", "ACCEPT")  # host to host (br_netfilter)
    for address in mirror_ips:
        _iptables(
            "-A",
            forward,
            "-i",
            bridge,
            "-d",
            address,
            "-p",
            "tcp",
            "-m",
            "multiport",
            "--dports",
            "80,443",
            "-j",
            "ACCEPT",
        )
    _iptables("-A", forward, "-i", bridge, "-j", "DROP")
    _iptables("-A", inbound, "-i", bridge, "-d", str(settings.gateway), "-j", "ACCEPT")
    _iptables("-A", inbound, "-i", bridge, "-j", "DROP")
    _iptables("-A", nat, "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE", table="nat")


def dropped_packets(settings: Settings) -> int:
    total = 0
    for chain in (settings.chain("FORWARD"), settings.chain("INPUT")):
        proc = _iptables("-n", "-v", "-x", "-L", chain, check=False)
        for line in proc.stdout.splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "DROP":
                total += int(fields[0])
    return total


def remove_bridge(settings: Settings) -> None:
    for table, chain, parent in (
        ("filter", settings.chain("FORWARD"), "FORWARD"),
        ("filter", settings.chain("INPUT"), "INPUT"),
        ("nat", settings.chain("NAT"), "POSTROUTING"),
    ):
        while _has_rule(table, parent, "-j", chain):
            _iptables("-D", parent, "-j", chain, table=table)
        if _iptables("-n", "-L", chain, table=table, check=False).returncode == 0:
            _iptables("-F", chain, table=table)
            _iptables("-X", chain, table=table)
    if run(["ip", "link", "show", settings.bridge], check=False).returncode == 0:
        run(["ip", "link", "del", settings.bridge])
    state = settings.run_dir / "ip_forward.before"
    if state.exists():
        IP_FORWARD.write_text(state.read_text())
        state.unlink()


def create_host_network(settings: Settings, host: str, address: ipaddress.IPv4Address) -> None:
    ns, veth = netns_name(settings, host), veth_name(settings, address)
    if run(["ip", "netns", "exec", ns, "true"], check=False).returncode != 0:
        run(["ip", "netns", "add", ns])
    if run(["ip", "link", "show", veth], check=False).returncode != 0:
        # The host's end is created inside the namespace already named eth0, like a real NIC.
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "link", "set", veth, "master", settings.bridge, "up"])
    inside = ["ip", "netns", "exec", ns]
    run([*inside, "ip", "link", "set", "lo", "up"])
    cidr = f"{address}/{settings.subnet.prefixlen}"
    if cidr not in run([*inside, "ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout:
        run([*inside, "ip", "addr", "add", cidr, "dev", "eth0"])
    run([*inside, "ip", "link", "set", "eth0", "up"])
    run([*inside, "ip", "route", "replace", "default", "via", str(settings.gateway)])


def remove_host_network(settings: Settings, host: str, address: ipaddress.IPv4Address | None) -> None:
    ns = netns_name(settings, host)
    if address is not None and run(["ip", "link", "show", veth_name(settings, address)], check=False).returncode == 0:
        run(["ip", "link", "del", veth_name(settings, address)])
    if run(["ip", "netns", "exec", ns, "true"], check=False).returncode == 0:
        run(["ip", "netns", "del", ns])
