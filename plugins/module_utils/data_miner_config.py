# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner stack's configuration: its keys, defaults, checks and where each pod may run.

Standard library only, Python 3.8. The configuration mirrors the k3s data-miner seed's ``cluster_config.yaml``
(002_040cd591b6393ee0.txt); the node list (``name``, ``master``, ``gpu``, ``storage_only``, ``disk_limit_mb``)
comes from the inventory. ``config_errors`` lists every problem, one line each naming the field and, for an
unknown key, the closest known one. Scheduling: ``all`` = every node that is not storage-only, ``master`` and
``gpu`` = those of them that are masters or have a GPU; the infrastructure goes to the first master that is not
storage-only.
"""

import difflib
import re

from ansible_collections.oceanid.fleet.plugins.module_utils.data_miner_app_config import (
    DataMinerError,
    app_config,
)

MANAGED_BY = "oceanid.fleet.data_miner"
PART_OF = "data-miner"
COMMON_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY, "app.kubernetes.io/part-of": PART_OF}
HOSTNAME_LABEL = "kubernetes.io/hostname"

KINDS = ("Deployment", "StatefulSet")
SCHEDULE_ON = ("all", "master", "gpu")
PERSISTENCE = ("hostPath", "pvc")
GPU_SHARING = ("runtime", "device_plugin")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
NODE_PORT_RANGE = (30000, 32767)

CONFIGMAP = "data-miner-config"
CONFIG_FILE = "config.yaml"
HF_SECRET = "hf-token"
POSTGRES_SECRET = "postgres-credentials"
GRAFANA_SECRET = "grafana-admin"
GRAFANA_DATASOURCES = "grafana-datasources"

_TOP = (
    "namespace",
    "storage",
    "image",
    "resource_presets",
    "workers",
    "infrastructure",
    "persistence",
    "storage_class",
    "gpu_sharing",
    "gpu_resource",
    "runtime_class",
    "app_config",
    "config_mount_path",
    "kubernetes_version",
    "labels",
)
_STORAGE = ("seaweedfs_mount", "db_path", "loki_path")
_IMAGE = ("name", "tag", "pull_policy")
_PRESET = ("cpu", "memory")
_WORKER = ("kind", "replicas", "schedule_on", "hf_token", "preset", "liveness_probe", "command", "args", "env")
_APP = ("defaults", "run_config", "k3s_app_overrides")
_NODE = ("name", "master", "gpu", "storage_only", "disk_limit_mb")

# Each infrastructure service: its defaults (the seed's values) and the keys it accepts.
INFRASTRUCTURE = {
    "postgres": {
        "enabled": True,
        "kind": "StatefulSet",
        "image": "postgres:16",
        "port": 5432,
        "database": "data_miner",
        "user": "postgres",
        "storage_size": "10Gi",
        "preset": None,
    },
    "loki": {
        "enabled": True,
        "kind": "StatefulSet",
        "image": "grafana/loki:2.9.0",
        "port": 3100,
        "storage_size": "10Gi",
        "preset": None,
    },
    "grafana": {
        "enabled": True,
        "kind": "Deployment",
        "image": "grafana/grafana:10.0.0",
        "port": 3000,
        "node_port": 30300,
        "preset": None,
    },
    "adminer": {
        "enabled": True,
        "kind": "Deployment",
        "image": "adminer:latest",
        "port": 8080,
        "node_port": 30080,
        "preset": None,
    },
}
# Environment variables the role sets in workers; a worker's env may not redefine them.
RESERVED_ENV = (
    "DATA_MINER_WORKER",
    "DATA_MINER_CONFIG",
    "DATABASE_URL",
    "PGPASSWORD",
    "LOKI_URL",
    "HF_TOKEN",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m?)$")
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_MEMORY_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_VERSION = re.compile(r"^v?(1\.[0-9]+)(\.[0-9]+)?([-+].*)?$")


# --- small helpers ---------------------------------------------------------------------------------------------


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_str(value):
    return isinstance(value, str)


def unknown_keys(given, known, where):
    """One error per key of ``given`` not in ``known``, naming the closest known key."""
    errors = []
    for key in given:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        hint = "did you mean %r?" % close[0] if close else "expected one of %s" % ", ".join(sorted(known))
        errors.append("%s: unknown key %r; %s" % (where, key, hint))
    return errors


def is_mapping(value):
    return isinstance(value, dict)


def section_of(config, key):
    """config[key] as a mapping ({} when absent or null)."""
    value = config.get(key) if is_mapping(config) else None
    return value if is_mapping(value) else {}


def parse_quantity(text, what):
    """A CPU quantity in millicores or a memory quantity in bytes; ValueError when it does not parse."""
    pattern = _CPU if what == "cpu" else _MEMORY
    match = pattern.match(str(text).strip())
    if not match:
        raise ValueError("%r is not a Kubernetes %s quantity" % (text, what))
    number = float(match.group(1))
    if what == "cpu":
        return number if match.group(2) == "m" else number * 1000
    return number * _MEMORY_UNITS[match.group(2)]


def parse_range(text, what):
    """``"250m-1000m"`` -> ("250m", "1000m"); a single quantity is both request and limit. ValueError when the
    text does not parse or the request exceeds the limit."""
    if not is_str(text) and not (_is_int(text) and what == "cpu"):
        raise ValueError("%r is not a string 'request-limit' such as %s" % (text, _EXAMPLE[what]))
    parts = [part.strip() for part in str(text).split("-")]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(parts):
        raise ValueError("%r is not 'request-limit' such as %s" % (text, _EXAMPLE[what]))
    request, limit = (parse_quantity(part, what) for part in parts)
    if request > limit:
        raise ValueError("%r: the request %s exceeds the limit %s" % (text, parts[0], parts[1]))
    return parts[0], parts[1]


_EXAMPLE = {"cpu": "'250m-1000m'", "memory": "'512Mi-2Gi'"}


# --- scheduling --------------------------------------------------------------------------------------------------


def _nodes(nodes):
    return [node for node in (nodes or []) if is_mapping(node) and is_str(node.get("name"))]


def eligible_nodes(schedule_on, nodes):
    """The names of the nodes a worker with ``schedule_on`` may run on, in the nodes' order (never storage_only)."""
    usable = [node for node in _nodes(nodes) if not node.get("storage_only")]
    if schedule_on == "master":
        usable = [node for node in usable if node.get("master")]
    elif schedule_on == "gpu":
        usable = [node for node in usable if node.get("gpu")]
    return [node["name"] for node in usable]


def infrastructure_node(nodes):
    """The node the infrastructure services are pinned to: the first master that is not storage_only."""
    masters = eligible_nodes("master", nodes)
    return masters[0] if masters else None


def node_affinity(names):
    """Required nodeAffinity on the hostname. No eligible node (a worker scaled to 0 on a cluster without GPU):
    DoesNotExist on kubernetes.io/hostname, which every node has, so the pod can go nowhere."""
    if names:
        expression = {"key": HOSTNAME_LABEL, "operator": "In", "values": list(names)}
    else:
        expression = {"key": HOSTNAME_LABEL, "operator": "DoesNotExist"}
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expression]}]
            }
        }
    }


# --- the configuration with its defaults -------------------------------------------------------------------------


def _worker(name, spec):
    spec = spec if is_mapping(spec) else {}
    schedule_on = spec.get("schedule_on", "all")
    return {
        "name": name,
        "kind": spec.get("kind") or "Deployment",
        "replicas": spec.get("replicas", 1),
        "schedule_on": schedule_on,
        "hf_token": spec.get("hf_token", False),
        "preset": spec.get("preset") or ("gpu" if schedule_on == "gpu" else "small"),
        "liveness_probe": spec.get("liveness_probe"),
        "command": spec.get("command"),
        "args": spec.get("args"),
        "env": spec.get("env") or {},
    }


def _infrastructure(config):
    """{service: settings with defaults} for the enabled services; an absent service is disabled."""
    section = section_of(config, "infrastructure")
    result = {}
    for service, defaults in INFRASTRUCTURE.items():
        if service not in section:
            continue
        given = section[service] if is_mapping(section[service]) else {}
        settings = dict(defaults)
        settings.update({key: value for key, value in given.items() if value is not None})
        if settings.get("enabled") is True:
            result[service] = settings
    return result


def _by_name(item):
    return str(item[0])


def settings_of(config):
    storage = section_of(config, "storage")
    db_path = storage.get("db_path") if is_str(storage.get("db_path")) else ""
    loki_path = storage.get("loki_path") or (
        db_path.rstrip("/").rsplit("/", 1)[0] + "/data_miner_loki" if db_path else ""
    )
    image = section_of(config, "image")
    return {
        "namespace": config.get("namespace") or "data-miner",
        "seaweedfs_mount": storage.get("seaweedfs_mount") or "",
        "db_path": db_path,
        "loki_path": loki_path,
        "image": "%s:%s" % (image.get("name"), image.get("tag") if image.get("tag") not in (None, "") else "latest"),
        "pull_policy": image.get("pull_policy") or "Never",
        "presets": section_of(config, "resource_presets"),
        "persistence": config.get("persistence") or "hostPath",
        "storage_class": config.get("storage_class") or "",
        "gpu_sharing": config.get("gpu_sharing") or "runtime",
        "gpu_resource": config.get("gpu_resource") or "nvidia.com/gpu",
        "runtime_class": config.get("runtime_class") or "nvidia",
        "config_mount_path": config.get("config_mount_path") or "/etc/data-miner",
        "labels": section_of(config, "labels"),
        "infrastructure": _infrastructure(config),
        "workers": [_worker(name, spec) for name, spec in sorted(section_of(config, "workers").items(), key=_by_name)],
    }


# --- checks ------------------------------------------------------------------------------------------------------


def _path_errors(value, where, required=True):
    if value in (None, "") and not required:
        return []
    if not is_str(value) or not value.startswith("/") or value.rstrip("/") == "":
        return ["%s: expected an absolute path other than /, got %r" % (where, value)]
    return []


def _node_errors(nodes):
    errors = []
    if not isinstance(nodes, list):
        return ["nodes: expected a list of {name, master, gpu, storage_only, disk_limit_mb}, got %r" % (nodes,)]
    seen = set()
    for index, node in enumerate(nodes):
        where = "nodes[%d]" % index
        if not is_mapping(node):
            errors.append("%s: expected a mapping, got %r" % (where, node))
            continue
        errors.extend(unknown_keys(node, _NODE, where))
        name = node.get("name")
        if not is_str(name) or not _DNS_SUBDOMAIN.match(name) or len(name) > 63:
            errors.append("%s.name: %r is not a Kubernetes node name (lowercase DNS name)" % (where, name))
        elif name in seen:
            errors.append("%s.name: node %r is listed twice" % (where, name))
        seen.add(name)
        for flag in ("master", "gpu", "storage_only"):
            if flag in node and not isinstance(node[flag], bool):
                errors.append("%s.%s: expected true or false, got %r" % (where, flag, node[flag]))
        if "disk_limit_mb" in node and not (_is_int(node["disk_limit_mb"]) and node["disk_limit_mb"] >= 0):
            errors.append("%s.disk_limit_mb: expected an integer >= 0, got %r" % (where, node["disk_limit_mb"]))
    if not errors and not infrastructure_node(nodes):
        errors.append("nodes: no master node that is not storage_only (the infrastructure and master workers need one)")
    return errors


def _preset_errors(presets):
    errors = []
    for name, preset in presets.items():
        where = "resource_presets.%s" % name
        if not is_mapping(preset):
            errors.append("%s: expected {cpu: 'request-limit', memory: 'request-limit'}, got %r" % (where, preset))
            continue
        errors.extend(unknown_keys(preset, _PRESET, where))
        for what in _PRESET:
            if what not in preset:
                errors.append("%s.%s: missing (expected 'request-limit' such as %s)" % (where, what, _EXAMPLE[what]))
                continue
            try:
                parse_range(preset[what], what)
            except ValueError as exc:
                errors.append("%s.%s: %s" % (where, what, exc))
    return errors


def _worker_errors(name, spec, presets, nodes):
    where = "workers.%s" % name
    if not is_str(name) or not _DNS_LABEL.match(name) or len(name) > 40:
        return ["%s: the worker name must be a lowercase DNS label of at most 40 characters" % where]
    if spec is not None and not is_mapping(spec):
        return ["%s: expected a mapping of %s, got %r" % (where, ", ".join(_WORKER), spec)]
    errors = unknown_keys(spec or {}, _WORKER, where)
    worker = _worker(name, spec)
    if worker["kind"] not in KINDS:
        errors.append("%s.kind: %r is not one of %s" % (where, worker["kind"], ", ".join(KINDS)))
    if not _is_int(worker["replicas"]) or worker["replicas"] < 0:
        errors.append("%s.replicas: expected an integer >= 0, got %r" % (where, worker["replicas"]))
    if worker["schedule_on"] not in SCHEDULE_ON:
        errors.append("%s.schedule_on: %r is not one of %s" % (where, worker["schedule_on"], ", ".join(SCHEDULE_ON)))
    elif _is_int(worker["replicas"]) and worker["replicas"] > 0 and not eligible_nodes(worker["schedule_on"], nodes):
        kind = {"all": "", "master": "master ", "gpu": "GPU "}[worker["schedule_on"]]
        errors.append(
            "%s.schedule_on: %r but no %snode that is not storage_only is in the nodes (%s); set replicas to 0 or "
            "add one"
            % (where, worker["schedule_on"], kind, ", ".join(node["name"] for node in _nodes(nodes)) or "none")
        )
    if not isinstance(worker["hf_token"], bool):
        errors.append("%s.hf_token: expected true or false, got %r" % (where, worker["hf_token"]))
    if not is_str(worker["preset"]) or worker["preset"] not in presets:
        errors.append(
            "%s.preset: %r is not defined in resource_presets (defined: %s)"
            % (where, worker["preset"], ", ".join(sorted(presets)) or "none")
        )
    if worker["liveness_probe"] is not None and not is_mapping(worker["liveness_probe"]):
        errors.append("%s.liveness_probe: expected a Kubernetes probe mapping or null" % where)
    for key in ("command", "args"):
        value = worker[key]
        if value is not None and not (isinstance(value, list) and all(is_str(item) for item in value)):
            errors.append("%s.%s: expected a list of strings or null, got %r" % (where, key, value))
    if not is_mapping(worker["env"]):
        errors.append("%s.env: expected a mapping NAME: value, got %r" % (where, worker["env"]))
    else:
        for key, value in worker["env"].items():
            if not is_str(key) or not _ENV_NAME.match(key):
                errors.append("%s.env: %r is not an environment variable name" % (where, key))
            elif key in RESERVED_ENV:
                errors.append("%s.env.%s: set by the role; it cannot be overridden" % (where, key))
            if isinstance(value, (dict, list)) or value is None:
                errors.append("%s.env.%s: expected a string, number or boolean, got %r" % (where, key, value))
    return errors


def _infrastructure_errors(section, persistence):
    errors = unknown_keys(section, tuple(INFRASTRUCTURE), "infrastructure")
    node_ports = {}
    for service, defaults in INFRASTRUCTURE.items():
        if service not in section or section[service] is None:
            continue
        where = "infrastructure.%s" % service
        given = section[service]
        if not is_mapping(given):
            errors.append("%s: expected a mapping, got %r" % (where, given))
            continue
        errors.extend(unknown_keys(given, tuple(defaults), where))
        settings = dict(defaults)
        settings.update({key: value for key, value in given.items() if value is not None})
        if not isinstance(settings["enabled"], bool):
            errors.append("%s.enabled: expected true or false, got %r" % (where, settings["enabled"]))
        if settings["kind"] not in KINDS:
            errors.append("%s.kind: %r is not one of %s" % (where, settings["kind"], ", ".join(KINDS)))
        if not is_str(settings["image"]) or not settings["image"]:
            errors.append("%s.image: expected an image reference, got %r" % (where, settings["image"]))
        if not _is_int(settings["port"]) or not 1 <= settings["port"] <= 65535:
            errors.append("%s.port: expected a port 1-65535, got %r" % (where, settings["port"]))
        if "node_port" in settings:
            port = settings["node_port"]
            if not _is_int(port) or not NODE_PORT_RANGE[0] <= port <= NODE_PORT_RANGE[1]:
                errors.append("%s.node_port: expected %d-%d, got %r" % ((where,) + NODE_PORT_RANGE + (port,)))
            elif settings["enabled"] is True and port in node_ports:
                errors.append("%s.node_port: %d is also %s's node_port" % (where, port, node_ports[port]))
            else:
                node_ports[port] = service
        for key in ("database", "user"):
            if key in settings and (not is_str(settings[key]) or not settings[key]):
                errors.append("%s.%s: expected a non-empty string, got %r" % (where, key, settings[key]))
        if "storage_size" in settings and persistence == "pvc":
            try:
                parse_quantity(settings["storage_size"], "memory")
            except ValueError as exc:
                errors.append("%s.storage_size: %s" % (where, exc))
    return errors


def config_errors(config, nodes):
    """Every problem of ``config`` and ``nodes``, one line each naming the field; empty when both are sound."""
    if not is_mapping(config):
        return ["config: expected a mapping (the role's data_miner_* variables), got %r" % (config,)]
    errors = unknown_keys(config, _TOP, "config")
    errors.extend(_node_errors(nodes))
    namespace = config.get("namespace")
    if not is_str(namespace) or not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        errors.append("namespace: %r is not a Kubernetes namespace name (lowercase DNS label)" % (namespace,))
    for key in ("storage", "image", "resource_presets", "workers", "infrastructure", "app_config", "labels"):
        if config.get(key) is not None and not is_mapping(config[key]):
            errors.append("%s: expected a mapping, got %r" % (key, config[key]))
    settings = settings_of(config)
    storage = section_of(config, "storage")
    errors.extend(unknown_keys(storage, _STORAGE, "storage"))
    errors.extend(_path_errors(storage.get("seaweedfs_mount"), "storage.seaweedfs_mount"))
    hostpath = settings["persistence"] == "hostPath"
    errors.extend(_path_errors(storage.get("db_path"), "storage.db_path", required=hostpath))
    errors.extend(_path_errors(storage.get("loki_path"), "storage.loki_path", required=False))
    image = section_of(config, "image")
    errors.extend(unknown_keys(image, _IMAGE, "image"))
    if not is_str(image.get("name")) or not image.get("name"):
        errors.append("image.name: expected the worker image's name, got %r" % (image.get("name"),))
    if "tag" in image and not (is_str(image["tag"]) or _is_int(image["tag"])):
        errors.append("image.tag: expected a string, got %r" % (image["tag"],))
    if settings["pull_policy"] not in PULL_POLICIES:
        errors.append("image.pull_policy: %r is not one of %s" % (settings["pull_policy"], ", ".join(PULL_POLICIES)))
    errors.extend(_preset_errors(settings["presets"]))
    for name, spec in section_of(config, "workers").items():
        errors.extend(_worker_errors(name, spec, settings["presets"], nodes))
    errors.extend(_infrastructure_errors(section_of(config, "infrastructure"), settings["persistence"]))
    for service, preset in sorted((s, v.get("preset")) for s, v in settings["infrastructure"].items()):
        if preset is not None and (not is_str(preset) or preset not in settings["presets"]):
            errors.append(
                "infrastructure.%s.preset: %r is not defined in resource_presets (defined: %s)"
                % (service, preset, ", ".join(sorted(settings["presets"])) or "none")
            )
    if settings["persistence"] not in PERSISTENCE:
        errors.append("persistence: %r is not one of %s" % (settings["persistence"], ", ".join(PERSISTENCE)))
    if not is_str(settings["storage_class"]):
        errors.append("storage_class: expected a string, got %r" % (settings["storage_class"],))
    if settings["gpu_sharing"] not in GPU_SHARING:
        errors.append("gpu_sharing: %r is not one of %s" % (settings["gpu_sharing"], ", ".join(GPU_SHARING)))
    for key in ("gpu_resource", "runtime_class"):
        if not is_str(settings[key]) or not _DNS_SUBDOMAIN.match(settings[key].replace("/", ".")):
            errors.append("%s: %r is not a valid name" % (key, settings[key]))
    errors.extend(_path_errors(config.get("config_mount_path"), "config_mount_path", required=False))
    version = config.get("kubernetes_version")
    if version is not None and not (is_str(version) and _VERSION.match(version)):
        errors.append("kubernetes_version: %r is not a version such as '1.31'" % (version,))
    for key, value in settings["labels"].items():
        if key in COMMON_LABELS:
            errors.append("labels.%s: set by the role (it prunes by it); it cannot be overridden" % key)
        elif not is_str(key) or not _LABEL_NAME.match(key.rsplit("/", 1)[-1]):
            errors.append("labels: %r is not a label key" % (key,))
        elif not is_str(value) or not _LABEL_VALUE.match(value) or len(value) > 63:
            errors.append("labels.%s: %r is not a label value (a string of at most 63 characters)" % (key, value))
    apps = section_of(config, "app_config")
    errors.extend(unknown_keys(apps, _APP, "app_config"))
    for key in _APP:
        if apps.get(key) is not None and not is_mapping(apps[key]):
            errors.append("app_config.%s: expected a mapping, got %r" % (key, apps[key]))
    # The references are checked even when something else is wrong: they resolve against the config as given.
    if all(apps.get(key) is None or is_mapping(apps[key]) for key in _APP):
        try:
            app_config(apps.get("defaults"), apps.get("run_config"), apps.get("k3s_app_overrides"), config)
        except DataMinerError as exc:
            errors.extend(exc.errors)
    return errors
