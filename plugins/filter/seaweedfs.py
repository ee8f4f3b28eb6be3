# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the seaweedfs role: what a host runs, its command lines and health checks, the S3 identities
and the Kubernetes layout. Each filter's documentation is in plugins/filter/<filter name>.yml."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

# Start (and restart) order of a host's components.
COMPONENTS = ("master", "volume", "filer", "s3", "mount")

_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm"}


def _setting(settings, key):
    try:
        return settings[key]
    except (KeyError, TypeError):
        raise AnsibleFilterError(f"the settings passed to this seaweedfs filter have no {key!r} (got {settings!r})")


def _location(settings, rack=True):
    args = []
    if str(settings.get("data_center", "")):
        args.append(f"-dataCenter={settings['data_center']}")
    if rack and str(settings.get("rack", "")):
        args.append(f"-rack={settings['rack']}")
    return args


def _per_component(components, builders, what):
    """{component: builders[component]()} for each component; an unknown one or a missing setting fails naming it."""
    result = {}
    for component in components:
        if component not in builders:
            raise AnsibleFilterError(
                f"unknown seaweedfs component {component!r}; expected one of {', '.join(COMPONENTS)}"
            )
        try:
            result[component] = builders[component]()
        except KeyError as exc:
            raise AnsibleFilterError(f"the settings for the {component} {what} have no {exc.args[0]!r}")
    return result


def seaweedfs_arch(architecture):
    """The release archive's name for an architecture fact (x86_64 -> amd64); unknown names pass through."""
    architecture = architecture or "x86_64"
    return _ARCHITECTURES.get(architecture, architecture)


def seaweedfs_components(host, masters=(), volumes=(), filers=(), s3=(), mount=False):
    """The components host runs, in start order."""
    runs = {"master": masters, "volume": volumes, "filer": filers, "s3": s3}
    components = [name for name in COMPONENTS[:4] if host in (runs[name] or ())]
    if boolean(mount, strict=False):
        components.append("mount")
    return components


def seaweedfs_commands(components, settings):
    """The argv of each component of this host: {component: [weed, subcommand, flags...]}."""
    weed = _setting(settings, "weed")
    listen = [f"-ip={_setting(settings, 'address')}", f"-ip.bind={_setting(settings, 'bind')}"]

    def server(name):
        """weed <name> with the address it advertises, the one it binds, and its HTTP and gRPC ports."""
        return [weed, name, *listen, f"-port={settings[name + '_port']}", f"-port.grpc={settings[name + '_grpc_port']}"]

    builders = {
        "master": lambda: (
            server("master")
            + [
                f"-mdir={settings['master_dir']}",
                "-peers=" + ("none" if _int(settings["master_count"]) == 1 else settings["masters"]),
                f"-volumeSizeLimitMB={settings['volume_size_limit_mb']}",
                f"-defaultReplication={settings['default_replication']}",
                "-telemetry=false",
            ]
            + list(settings.get("master_extra_args") or [])
        ),
        "volume": lambda: (
            server("volume")
            + [
                f"-dir={settings['volume_dir']}",
                f"-max={settings['volume_max']}",
                f"-master={settings['masters']}",
                f"-minFreeSpace={settings['volume_min_free_space']}",
                f"-preStopSeconds={settings['volume_pre_stop_seconds']}",
            ]
            + _location(settings)
            + list(settings.get("volume_extra_args") or [])
        ),
        "filer": lambda: (
            server("filer")
            + [
                f"-master={settings['masters']}",
            ]
            + _location(settings)
            + list(settings.get("filer_extra_args") or [])
        ),
        "s3": lambda: (
            [
                weed,
                "s3",
                f"-ip.bind={settings['bind']}",
                f"-port={settings['s3_port']}",
                f"-filer={settings['filers']}",
                f"-config={settings['s3_config']}",
            ]
            + list(settings.get("s3_extra_args") or [])
        ),
        "mount": lambda: (
            [
                weed,
                "mount",
                f"-filer={settings['filers']}",
                f"-dir={settings['mount_dir']}",
                f"-filer.path={settings['mount_filer_path']}",
                "-allowOthers=true",
                f"-cacheDir={settings['mount_cache_dir']}",
                f"-cacheCapacityMB={settings['mount_cache_capacity_mb']}",
            ]
            + _location(settings, rack=False)
            + list(settings.get("mount_extra_args") or [])
        ),
    }
    return _per_component(components, builders, "command line")


def seaweedfs_health_checks(components, settings):
    """Arguments of the wait helper that say a component is healthy: {component: [args...]}."""
    address = _setting(settings, "address")
    checks = {
        "master": lambda: [
            "--check",
            f"http://{address}:{settings['master_port']}/cluster/status",
            "--require",
            "Leader",
        ],
        "volume": lambda: [
            "--check",
            f"http://{settings['volume_node']}/status",
            "--check",
            f"{settings['master_url']}/dir/status",
            "--contains",
            f'"Url":"{settings["volume_node"]}"',
        ],
        "filer": lambda: ["--check", f"http://{address}:{settings['filer_port']}/healthz"],
        "s3": lambda: (
            ["--s3", f"http://{address}:{settings['s3_port']}", "--s3-config", settings["s3_config"]]
            + ([] if settings.get("s3_anonymous_actions") else ["--s3-anonymous-denied"])
        ),
        "mount": lambda: ["--mount", settings["mount_dir"]],
    }
    return _per_component(components, checks, "health check")


def seaweedfs_s3_identities(identities, anonymous_actions=()):
    """The identities list of s3.json: the anonymous identity when actions are granted to it, then each identity."""
    result = []
    if anonymous_actions:
        result.append({"name": "anonymous", "actions": list(anonymous_actions)})
    for identity in identities or ():
        result.append(
            {
                "name": identity["name"],
                "credentials": [{"accessKey": identity["access_key"], "secretKey": identity["secret_key"]}],
                "actions": identity["actions"],
            }
        )
    return result


def seaweedfs_s3_invalid_identities(identities, action_pattern):
    """Names (or #position) of identities without a name, both keys, or a non-empty list of valid actions."""
    pattern = re.compile(action_pattern)
    bad = []
    for index, identity in enumerate(identities or (), start=1):
        if not isinstance(identity, Mapping):
            bad.append(f"#{index}")
            continue
        actions = identity.get("actions", [])
        if (
            any(not str(identity.get(key, "")) for key in ("name", "access_key", "secret_key"))
            or isinstance(actions, str)
            or not actions
            or any(not pattern.match(str(action)) for action in actions)
        ):
            bad.append(identity.get("name", f"#{index}"))
    return bad


def _int(value):
    """Jinja's int filter: a number, a numeric string (int or float), else 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def _hostvar(hostvars, host, name, default):
    try:
        values = hostvars[host]
    except KeyError:
        return default
    try:
        return values[name]
    except KeyError:
        return default


def seaweedfs_k8s_node_names(hosts, hostvars):
    """The Kubernetes node name of each host (its seaweedfs_k8s_node_name, else the host's name)."""
    return [_hostvar(hostvars, host, "seaweedfs_k8s_node_name", host) for host in hosts or ()]


def seaweedfs_k8s_storage_only_nodes(hosts, hostvars):
    """The Kubernetes node names of the hosts with seaweedfs_storage_only true."""
    return [
        _hostvar(hostvars, host, "seaweedfs_k8s_node_name", host)
        for host in hosts or ()
        if boolean(_hostvar(hostvars, host, "seaweedfs_storage_only", False), strict=False)
    ]


def seaweedfs_k8s_volume_nodes(hosts, hostvars, volume_size_limit_mb, default_disk_limit_mb=0, data_center="", rack=""):
    """Each volume host with its node name, disk limit, -max (whole volumes in the limit), data center and rack."""
    size = _int(volume_size_limit_mb)
    nodes = []
    for host in hosts or ():
        limit = _int(_hostvar(hostvars, host, "seaweedfs_disk_limit_mb", default_disk_limit_mb))
        nodes.append(
            {
                "host": host,
                "node": _hostvar(hostvars, host, "seaweedfs_k8s_node_name", host),
                "disk_limit_mb": limit,
                "max": limit // size,
                "data_center": _hostvar(hostvars, host, "seaweedfs_data_center", data_center),
                "rack": _hostvar(hostvars, host, "seaweedfs_rack", rack),
            }
        )
    return nodes


def seaweedfs_k8s_manifests(volume_nodes):
    """The manifest files to render, in apply order, each {file, template[, secret][, node]}."""
    files = [
        {"file": "namespace.yaml", "template": "namespace.yaml.j2"},
        {"file": "config-secret.yaml", "template": "config-secret.yaml.j2", "secret": True},
        {"file": "master-service.yaml", "template": "master-service.yaml.j2"},
        {"file": "master-statefulset.yaml", "template": "master-statefulset.yaml.j2"},
        {"file": "volume-service.yaml", "template": "volume-service.yaml.j2"},
    ]
    files += [
        {"file": f"volume-{node['node']}-statefulset.yaml", "template": "volume-statefulset.yaml.j2", "node": node}
        for node in volume_nodes or ()
    ]
    return files + [
        {"file": "filer-service.yaml", "template": "filer-service.yaml.j2"},
        {"file": "filer-statefulset.yaml", "template": "filer-statefulset.yaml.j2"},
        {"file": "mount-daemonset.yaml", "template": "mount-daemonset.yaml.j2"},
    ]


def seaweedfs_k8s_master_peers(count, namespace, port):
    """The masters' peer list in the cluster: master-<i>.master.<namespace>.svc.cluster.local:<port>, joined by commas."""
    return ",".join(f"master-{index}.master.{namespace}.svc.cluster.local:{port}" for index in range(_int(count)))


class FilterModule:
    """The seaweedfs role's builders."""

    def filters(self):
        return {
            "seaweedfs_arch": seaweedfs_arch,
            "seaweedfs_components": seaweedfs_components,
            "seaweedfs_commands": seaweedfs_commands,
            "seaweedfs_health_checks": seaweedfs_health_checks,
            "seaweedfs_s3_identities": seaweedfs_s3_identities,
            "seaweedfs_s3_invalid_identities": seaweedfs_s3_invalid_identities,
            "seaweedfs_k8s_node_names": seaweedfs_k8s_node_names,
            "seaweedfs_k8s_storage_only_nodes": seaweedfs_k8s_storage_only_nodes,
            "seaweedfs_k8s_volume_nodes": seaweedfs_k8s_volume_nodes,
            "seaweedfs_k8s_manifests": seaweedfs_k8s_manifests,
            "seaweedfs_k8s_master_peers": seaweedfs_k8s_master_peers,
        }
