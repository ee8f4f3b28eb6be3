# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner stack on k3s: its configuration checked, its application config merged, its manifests built.

Standard library only, Python 3.8. The configuration mirrors the k3s data-miner seed's ``cluster_config.yaml``
(002_040cd591b6393ee0.txt); the node list comes from the inventory. Three entry points:

``config_errors(config, nodes)``
    Every problem of the configuration, one line each naming the field; empty when sound.
``app_config(defaults, run_config, overrides, context)``
    The seed's three-layer merge (later layers win, mappings merged key by key) with ``${a.b}`` references
    resolved against ``context``. A string that is exactly one reference keeps the referenced value's type; a
    reference inside a longer string is formatted into it; ``$${`` writes a literal ``${``. An empty string stays
    an empty string (the seed's ``blocked_hashtag_patterns: ''`` became ``Path('.')``).
``manifests(config, nodes, secrets, dump=None)``
    ``[{"path": "<dir>/<file>.yaml", "manifest": {...}}]`` in apply order; ``dump`` turns a mapping into the
    text of a ConfigMap file (JSON when not given; the filter passes YAML).

Traps of the seed's "Issues Encountered" that this code prevents: no liveness probe unless a worker declares one;
with ``gpu_sharing: runtime`` no ``nvidia.com/gpu`` limit (one GPU, several GPU pods); the Grafana Loki and
PostgreSQL datasource URLs are the in-cluster service names, never empty; ``''`` survives the merge.
"""

import base64
import copy
import difflib
import hashlib
import json
import re

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
# What the pod of each infrastructure service is (app.kubernetes.io/component).
_COMPONENT = {"postgres": "database", "loki": "logging", "grafana": "dashboard", "adminer": "database-admin"}
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
_REFERENCE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_VERSION = re.compile(r"^v?(1\.[0-9]+)(\.[0-9]+)?([-+].*)?$")


class DataMinerError(ValueError):
    """Invalid input; ``errors`` holds one line per problem."""

    def __init__(self, errors):
        self.errors = list(errors) if isinstance(errors, (list, tuple)) else [errors]
        super().__init__("\n".join(self.errors))


# --- small helpers ---------------------------------------------------------------------------------------------


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value):
    return isinstance(value, str)


def _unknown_keys(mapping, known, where):
    """One error per key of ``mapping`` not in ``known``, naming the closest known key."""
    errors = []
    for key in mapping:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        hint = "did you mean %r?" % close[0] if close else "expected one of %s" % ", ".join(sorted(known))
        errors.append("%s: unknown key %r; %s" % (where, key, hint))
    return errors


def _mapping(value):
    return isinstance(value, dict)


def _section(config, key):
    """config[key] as a mapping ({} when absent or null)."""
    value = config.get(key) if _mapping(config) else None
    return value if _mapping(value) else {}


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
    if not _is_str(text) and not (_is_int(text) and what == "cpu"):
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


# --- the application config: three layers and ${a.b} references -------------------------------------------------


def deep_merge(*layers):
    """The layers merged, later ones winning; mappings merged key by key, anything else replaced (a later ``''``,
    ``0``, ``false`` or ``null`` replaces too). The inputs are not modified."""
    result = {}
    for layer in layers:
        if layer is None:
            continue
        if not _mapping(layer):
            raise DataMinerError("app_config: every layer must be a mapping, got %r" % (layer,))
        result = _merge_two(result, layer)
    return result


def _merge_two(base, layer):
    merged = copy.deepcopy(base)
    for key, value in layer.items():
        if _mapping(value) and _mapping(merged.get(key)):
            merged[key] = _merge_two(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _lookup(context, reference, holder):
    """The value at dotted ``reference`` in ``context``; DataMinerError naming the reference and its holder."""
    value = context
    walked = []
    for part in reference.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif _mapping(value) and part in value:
            value = value[part]
        else:
            known = ", ".join(sorted(str(k) for k in value)) if _mapping(value) else "none: it is not a mapping"
            where = ".".join(walked) or "the context"
            raise DataMinerError(
                "%s: unknown reference ${%s} (%s has no %r; known keys: %s)" % (holder, reference, where, part, known)
            )
        walked.append(part)
    return value


def _format(value, reference, holder):
    if value is None:
        raise DataMinerError("%s: ${%s} is null and cannot be written into a string" % (holder, reference))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise DataMinerError(
            "%s: ${%s} is a %s and cannot be written into a string (use it as the whole value)"
            % (holder, reference, type(value).__name__)
        )
    return str(value)


def _resolve(value, context, holder, stack):
    """``value`` with every reference resolved; ``stack`` holds the references being resolved (cycle check)."""
    if _mapping(value):
        return {key: _resolve(item, context, "%s.%s" % (holder, key), stack) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, context, "%s[%d]" % (holder, index), stack) for index, item in enumerate(value)]
    if not _is_str(value) or "$" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole and whole.group(1) is not None:
        return _follow(whole.group(1).strip(), context, holder, stack)

    def substitute(match):
        if match.group(1) is None:
            return "${"
        reference = match.group(1).strip()
        return _format(_follow(reference, context, holder, stack), reference, holder)

    return _REFERENCE.sub(substitute, value)


def _follow(reference, context, holder, stack):
    if not reference:
        raise DataMinerError("%s: empty reference ${}" % holder)
    if reference in stack:
        chain = " -> ".join("${%s}" % item for item in stack + [reference])
        raise DataMinerError("%s: reference cycle %s" % (holder, chain))
    if len(stack) >= 32:
        raise DataMinerError("%s: references nested deeper than 32 (%s)" % (holder, " -> ".join(stack)))
    target = _lookup(context, reference, holder)
    return _resolve(copy.deepcopy(target), context, holder, stack + [reference])


def interpolate(value, context, holder="app_config"):
    """``value`` with its ``${a.b}`` references resolved against ``context`` (see the module docstring)."""
    return _resolve(value, context if context is not None else {}, holder, [])


def app_config(defaults, run_config, overrides, context):
    """The merged application config: defaults, then the run config, then the k3s overrides; references resolved.

    Raises DataMinerError naming the reference and the key holding it when a reference is unknown or cyclic.
    """
    merged = deep_merge(defaults or {}, run_config or {}, overrides or {})
    return interpolate(merged, context, "app_config")


# --- scheduling --------------------------------------------------------------------------------------------------


def _nodes(nodes):
    return [node for node in (nodes or []) if _mapping(node) and _is_str(node.get("name"))]


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


def _node_affinity(names):
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
    spec = spec if _mapping(spec) else {}
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
    section = _section(config, "infrastructure")
    result = {}
    for service, defaults in INFRASTRUCTURE.items():
        if service not in section:
            continue
        given = section[service] if _mapping(section[service]) else {}
        settings = dict(defaults)
        settings.update({key: value for key, value in given.items() if value is not None})
        if settings.get("enabled") is True:
            result[service] = settings
    return result


def _by_name(item):
    return str(item[0])


def _settings(config):
    storage = _section(config, "storage")
    db_path = storage.get("db_path") if _is_str(storage.get("db_path")) else ""
    loki_path = storage.get("loki_path") or (
        db_path.rstrip("/").rsplit("/", 1)[0] + "/data_miner_loki" if db_path else ""
    )
    image = _section(config, "image")
    return {
        "namespace": config.get("namespace") or "data-miner",
        "seaweedfs_mount": storage.get("seaweedfs_mount") or "",
        "db_path": db_path,
        "loki_path": loki_path,
        "image": "%s:%s" % (image.get("name"), image.get("tag") if image.get("tag") not in (None, "") else "latest"),
        "pull_policy": image.get("pull_policy") or "Never",
        "presets": _section(config, "resource_presets"),
        "persistence": config.get("persistence") or "hostPath",
        "storage_class": config.get("storage_class") or "",
        "gpu_sharing": config.get("gpu_sharing") or "runtime",
        "gpu_resource": config.get("gpu_resource") or "nvidia.com/gpu",
        "runtime_class": config.get("runtime_class") or "nvidia",
        "config_mount_path": config.get("config_mount_path") or "/etc/data-miner",
        "labels": _section(config, "labels"),
        "infrastructure": _infrastructure(config),
        "workers": [_worker(name, spec) for name, spec in sorted(_section(config, "workers").items(), key=_by_name)],
    }


# --- checks ------------------------------------------------------------------------------------------------------


def _path_errors(value, where, required=True):
    if value in (None, "") and not required:
        return []
    if not _is_str(value) or not value.startswith("/") or value.rstrip("/") == "":
        return ["%s: expected an absolute path other than /, got %r" % (where, value)]
    return []


def _node_errors(nodes):
    errors = []
    if not isinstance(nodes, list):
        return ["nodes: expected a list of {name, master, gpu, storage_only, disk_limit_mb}, got %r" % (nodes,)]
    seen = set()
    for index, node in enumerate(nodes):
        where = "nodes[%d]" % index
        if not _mapping(node):
            errors.append("%s: expected a mapping, got %r" % (where, node))
            continue
        errors.extend(_unknown_keys(node, _NODE, where))
        name = node.get("name")
        if not _is_str(name) or not _DNS_SUBDOMAIN.match(name) or len(name) > 63:
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
        if not _mapping(preset):
            errors.append("%s: expected {cpu: 'request-limit', memory: 'request-limit'}, got %r" % (where, preset))
            continue
        errors.extend(_unknown_keys(preset, _PRESET, where))
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
    if not _is_str(name) or not _DNS_LABEL.match(name) or len(name) > 40:
        return ["%s: the worker name must be a lowercase DNS label of at most 40 characters" % where]
    if spec is not None and not _mapping(spec):
        return ["%s: expected a mapping of %s, got %r" % (where, ", ".join(_WORKER), spec)]
    errors = _unknown_keys(spec or {}, _WORKER, where)
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
    if not _is_str(worker["preset"]) or worker["preset"] not in presets:
        errors.append(
            "%s.preset: %r is not defined in resource_presets (defined: %s)"
            % (where, worker["preset"], ", ".join(sorted(presets)) or "none")
        )
    if worker["liveness_probe"] is not None and not _mapping(worker["liveness_probe"]):
        errors.append("%s.liveness_probe: expected a Kubernetes probe mapping or null" % where)
    for key in ("command", "args"):
        value = worker[key]
        if value is not None and not (isinstance(value, list) and all(_is_str(item) for item in value)):
            errors.append("%s.%s: expected a list of strings or null, got %r" % (where, key, value))
    if not _mapping(worker["env"]):
        errors.append("%s.env: expected a mapping NAME: value, got %r" % (where, worker["env"]))
    else:
        for key, value in worker["env"].items():
            if not _is_str(key) or not _ENV_NAME.match(key):
                errors.append("%s.env: %r is not an environment variable name" % (where, key))
            elif key in RESERVED_ENV:
                errors.append("%s.env.%s: set by the role; it cannot be overridden" % (where, key))
            if isinstance(value, (dict, list)) or value is None:
                errors.append("%s.env.%s: expected a string, number or boolean, got %r" % (where, key, value))
    return errors


def _infrastructure_errors(section, persistence):
    errors = _unknown_keys(section, tuple(INFRASTRUCTURE), "infrastructure")
    node_ports = {}
    for service, defaults in INFRASTRUCTURE.items():
        if service not in section or section[service] is None:
            continue
        where = "infrastructure.%s" % service
        given = section[service]
        if not _mapping(given):
            errors.append("%s: expected a mapping, got %r" % (where, given))
            continue
        errors.extend(_unknown_keys(given, tuple(defaults), where))
        settings = dict(defaults)
        settings.update({key: value for key, value in given.items() if value is not None})
        if not isinstance(settings["enabled"], bool):
            errors.append("%s.enabled: expected true or false, got %r" % (where, settings["enabled"]))
        if settings["kind"] not in KINDS:
            errors.append("%s.kind: %r is not one of %s" % (where, settings["kind"], ", ".join(KINDS)))
        if not _is_str(settings["image"]) or not settings["image"]:
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
            if key in settings and (not _is_str(settings[key]) or not settings[key]):
                errors.append("%s.%s: expected a non-empty string, got %r" % (where, key, settings[key]))
        if "storage_size" in settings and persistence == "pvc":
            try:
                parse_quantity(settings["storage_size"], "memory")
            except ValueError as exc:
                errors.append("%s.storage_size: %s" % (where, exc))
    return errors


def config_errors(config, nodes):
    """Every problem of ``config`` and ``nodes``, one line each naming the field; empty when both are sound."""
    if not _mapping(config):
        return ["config: expected a mapping (the role's data_miner_* variables), got %r" % (config,)]
    errors = _unknown_keys(config, _TOP, "config")
    errors.extend(_node_errors(nodes))
    namespace = config.get("namespace")
    if not _is_str(namespace) or not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        errors.append("namespace: %r is not a Kubernetes namespace name (lowercase DNS label)" % (namespace,))
    for key in ("storage", "image", "resource_presets", "workers", "infrastructure", "app_config", "labels"):
        if config.get(key) is not None and not _mapping(config[key]):
            errors.append("%s: expected a mapping, got %r" % (key, config[key]))
    settings = _settings(config)
    storage = _section(config, "storage")
    errors.extend(_unknown_keys(storage, _STORAGE, "storage"))
    errors.extend(_path_errors(storage.get("seaweedfs_mount"), "storage.seaweedfs_mount"))
    hostpath = settings["persistence"] == "hostPath"
    errors.extend(_path_errors(storage.get("db_path"), "storage.db_path", required=hostpath))
    errors.extend(_path_errors(storage.get("loki_path"), "storage.loki_path", required=False))
    image = _section(config, "image")
    errors.extend(_unknown_keys(image, _IMAGE, "image"))
    if not _is_str(image.get("name")) or not image.get("name"):
        errors.append("image.name: expected the worker image's name, got %r" % (image.get("name"),))
    if "tag" in image and not (_is_str(image["tag"]) or _is_int(image["tag"])):
        errors.append("image.tag: expected a string, got %r" % (image["tag"],))
    if settings["pull_policy"] not in PULL_POLICIES:
        errors.append("image.pull_policy: %r is not one of %s" % (settings["pull_policy"], ", ".join(PULL_POLICIES)))
    errors.extend(_preset_errors(settings["presets"]))
    for name, spec in _section(config, "workers").items():
        errors.extend(_worker_errors(name, spec, settings["presets"], nodes))
    errors.extend(_infrastructure_errors(_section(config, "infrastructure"), settings["persistence"]))
    for service, preset in sorted((s, v.get("preset")) for s, v in settings["infrastructure"].items()):
        if preset is not None and preset not in settings["presets"]:
            errors.append("infrastructure.%s.preset: %r is not defined in resource_presets" % (service, preset))
    if settings["persistence"] not in PERSISTENCE:
        errors.append("persistence: %r is not one of %s" % (settings["persistence"], ", ".join(PERSISTENCE)))
    if not _is_str(settings["storage_class"]):
        errors.append("storage_class: expected a string, got %r" % (settings["storage_class"],))
    if settings["gpu_sharing"] not in GPU_SHARING:
        errors.append("gpu_sharing: %r is not one of %s" % (settings["gpu_sharing"], ", ".join(GPU_SHARING)))
    for key in ("gpu_resource", "runtime_class"):
        if not _is_str(settings[key]) or not _DNS_SUBDOMAIN.match(settings[key].replace("/", ".")):
            errors.append("%s: %r is not a valid name" % (key, settings[key]))
    errors.extend(_path_errors(config.get("config_mount_path"), "config_mount_path", required=False))
    version = config.get("kubernetes_version")
    if version is not None and not (_is_str(version) and _VERSION.match(version)):
        errors.append("kubernetes_version: %r is not a version such as '1.31'" % (version,))
    for key, value in settings["labels"].items():
        if key in COMMON_LABELS:
            errors.append("labels.%s: set by the role (it prunes by it); it cannot be overridden" % key)
        elif not _is_str(key) or not _LABEL_NAME.match(key.rsplit("/", 1)[-1]):
            errors.append("labels: %r is not a label key" % (key,))
        elif not _is_str(value) or not _LABEL_VALUE.match(value) or len(value) > 63:
            errors.append("labels.%s: %r is not a label value (a string of at most 63 characters)" % (key, value))
    apps = _section(config, "app_config")
    errors.extend(_unknown_keys(apps, _APP, "app_config"))
    for key in _APP:
        if apps.get(key) is not None and not _mapping(apps[key]):
            errors.append("app_config.%s: expected a mapping, got %r" % (key, apps[key]))
    if not errors:
        try:
            app_config(apps.get("defaults"), apps.get("run_config"), apps.get("k3s_app_overrides"), config)
        except DataMinerError as exc:
            errors.extend(exc.errors)
    return errors


# --- manifests ---------------------------------------------------------------------------------------------------


def _labels(settings, name, component):
    labels = dict(settings["labels"])
    labels.update({"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/component": component})
    labels.update(COMMON_LABELS)
    return labels


def _metadata(settings, name, component):
    return {"name": name, "namespace": settings["namespace"], "labels": _labels(settings, name, component)}


def _resources(settings, preset):
    if preset is None:
        return None
    spec = settings["presets"][preset]
    cpu = parse_range(spec["cpu"], "cpu")
    memory = parse_range(spec["memory"], "memory")
    return {"requests": {"cpu": cpu[0], "memory": memory[0]}, "limits": {"cpu": cpu[1], "memory": memory[1]}}


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _secret(settings, name, component, data):
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(settings, name, component),
        "type": "Opaque",
        "data": {key: _b64(value) for key, value in data.items()},
    }


def _secret_env(name, secret, key, optional=False):
    ref = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _config_env(name, key):
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": CONFIGMAP, "key": key}}}


def _service_host(settings, service):
    return "%s.%s.svc.cluster.local" % (service, settings["namespace"])


def _workload(settings, kind, name, component, replicas, pod_spec, annotations=None):
    template_metadata = {"labels": _labels(settings, name, component)}
    if annotations:
        template_metadata["annotations"] = annotations
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}}}
    if kind == "StatefulSet":
        spec["serviceName"] = name
        spec["podManagementPolicy"] = "Parallel"
    spec["template"] = {"metadata": template_metadata, "spec": pod_spec}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": _metadata(settings, name, component), "spec": spec}


def _service(settings, name, component, port, headless=False, node_port=None):
    spec = {"selector": {"app": name}}
    if headless:
        spec["clusterIP"] = "None"
    if node_port is not None:
        spec["type"] = "NodePort"
    elif not headless:
        spec["type"] = "ClusterIP"
    if port is not None:
        entry = {"name": "http" if component != "database" else "postgres", "port": port, "targetPort": port}
        if node_port is not None:
            entry["nodePort"] = node_port
        spec["ports"] = [entry]
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(settings, name, component), "spec": spec}


def _storage(settings, name, component, service, host_path, items):
    """The data volume of an infrastructure service: a hostPath on the master or a PVC (added to ``items``)."""
    if settings["persistence"] == "hostPath":
        return {"name": "data", "hostPath": {"path": host_path, "type": "DirectoryOrCreate"}}
    claim = "%s-data" % name
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": service["storage_size"]}}}
    if settings["storage_class"]:
        spec["storageClassName"] = settings["storage_class"]
    manifest = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(settings, claim, component),
        "spec": spec,
    }
    items.append(("infrastructure/%s-pvc.yaml" % name, manifest))
    return {"name": "data", "persistentVolumeClaim": {"claimName": claim}}


def _container(name, image, port=None, env=None, resources=None, mounts=None):
    container = {"name": name, "image": image}
    if port is not None:
        container["ports"] = [{"name": "http" if name != "postgres" else "postgres", "containerPort": port}]
    if env:
        container["env"] = env
    if resources:
        container["resources"] = resources
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _file_name(kind):
    return "statefulset" if kind == "StatefulSet" else "deployment"


def _postgres(settings, service, node, items):
    name = "postgres"
    env = [
        {"name": "POSTGRES_DB", "value": service["database"]},
        {"name": "POSTGRES_USER", "value": service["user"]},
        _secret_env("POSTGRES_PASSWORD", POSTGRES_SECRET, "password"),
        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
    ]
    volume = _storage(settings, name, "database", service, settings["db_path"], items)
    container = _container(
        name,
        service["image"],
        service["port"],
        env,
        _resources(settings, service["preset"]),
        [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
    )
    container["readinessProbe"] = {
        "exec": {"command": ["pg_isready", "-U", service["user"], "-d", service["database"]]},
        "periodSeconds": 10,
    }
    pod = {"affinity": _node_affinity([node]), "containers": [container], "volumes": [volume]}
    items.append(
        (
            "infrastructure/postgres-%s.yaml" % _file_name(service["kind"]),
            _workload(settings, service["kind"], name, "database", 1, pod),
        )
    )
    items.append(("infrastructure/postgres-service.yaml", _service(settings, name, "database", service["port"], True)))


def _loki(settings, service, node, items):
    name = "loki"
    volume = _storage(settings, name, "logging", service, settings["loki_path"], items)
    container = _container(
        name,
        service["image"],
        service["port"],
        None,
        _resources(settings, service["preset"]),
        [{"name": "data", "mountPath": "/loki"}],
    )
    container["args"] = ["-config.file=/etc/loki/local-config.yaml"]
    container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": service["port"]}, "periodSeconds": 10}
    pod = {"affinity": _node_affinity([node]), "containers": [container], "volumes": [volume]}
    items.append(
        (
            "infrastructure/loki-%s.yaml" % _file_name(service["kind"]),
            _workload(settings, service["kind"], name, "logging", 1, pod),
        )
    )
    items.append(("infrastructure/loki-service.yaml", _service(settings, name, "logging", service["port"])))


def grafana_datasources(config):
    """Grafana's datasource provisioning file for ``config``: Loki and PostgreSQL at their in-cluster service names
    (the seed's Loki datasource had an empty URL)."""
    return _grafana_datasources(_settings(config))


def _grafana_datasources(settings):
    infrastructure = settings["infrastructure"]
    datasources = []
    if "loki" in infrastructure:
        datasources.append(
            {
                "name": "Loki",
                "type": "loki",
                "uid": "loki",
                "access": "proxy",
                "url": "http://%s:%d" % (_service_host(settings, "loki"), infrastructure["loki"]["port"]),
                "isDefault": True,
                "editable": False,
            }
        )
    if "postgres" in infrastructure:
        postgres = infrastructure["postgres"]
        datasources.append(
            {
                "name": "PostgreSQL",
                "type": "postgres",
                "uid": "postgres",
                "access": "proxy",
                "url": "%s:%d" % (_service_host(settings, "postgres"), postgres["port"]),
                "user": postgres["user"],
                "isDefault": "loki" not in infrastructure,
                "editable": False,
                "jsonData": {"database": postgres["database"], "sslmode": "disable"},
                # Grafana expands $VAR in provisioning files: the password comes from the postgres Secret (env).
                "secureJsonData": {"password": "$POSTGRES_PASSWORD"},
            }
        )
    return {"apiVersion": 1, "datasources": datasources}


def _grafana(settings, service, node, items, dump):
    name = "grafana"
    items.append(
        (
            "infrastructure/grafana-datasources-configmap.yaml",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _metadata(settings, GRAFANA_DATASOURCES, "dashboard"),
                "data": {"datasources.yaml": dump(_grafana_datasources(settings))},
            },
        )
    )
    env = [
        _secret_env("GF_SECURITY_ADMIN_USER", GRAFANA_SECRET, "admin-user"),
        _secret_env("GF_SECURITY_ADMIN_PASSWORD", GRAFANA_SECRET, "admin-password"),
    ]
    if "postgres" in settings["infrastructure"]:
        env.append(_secret_env("POSTGRES_PASSWORD", POSTGRES_SECRET, "password"))
    container = _container(
        name,
        service["image"],
        service["port"],
        env,
        _resources(settings, service["preset"]),
        [{"name": "datasources", "mountPath": "/etc/grafana/provisioning/datasources", "readOnly": True}],
    )
    container["readinessProbe"] = {"httpGet": {"path": "/api/health", "port": service["port"]}, "periodSeconds": 10}
    pod = {
        "affinity": _node_affinity([node]),
        "containers": [container],
        "volumes": [{"name": "datasources", "configMap": {"name": GRAFANA_DATASOURCES}}],
    }
    if service["kind"] == "StatefulSet":
        items.append(
            ("infrastructure/grafana-headless-service.yaml", _service(settings, name, "dashboard", None, True))
        )
    items.append(
        (
            "infrastructure/grafana-%s.yaml" % _file_name(service["kind"]),
            _workload(
                settings,
                service["kind"],
                name,
                "dashboard",
                1,
                pod,
                {"oceanid.fleet/datasources-hash": _digest(_grafana_datasources(settings))},
            ),
        )
    )
    items.append(
        (
            "infrastructure/grafana-service.yaml",
            _service(settings, name, "dashboard", service["port"], node_port=service["node_port"]),
        )
    )


def _adminer(settings, service, node, items):
    name = "adminer"
    env = []
    if "postgres" in settings["infrastructure"]:
        env.append({"name": "ADMINER_DEFAULT_SERVER", "value": _service_host(settings, "postgres")})
    container = _container(name, service["image"], service["port"], env, _resources(settings, service["preset"]))
    pod = {"affinity": _node_affinity([node]), "containers": [container]}
    if service["kind"] == "StatefulSet":
        items.append(
            ("infrastructure/adminer-headless-service.yaml", _service(settings, name, "database-admin", None, True))
        )
    items.append(
        (
            "infrastructure/adminer-%s.yaml" % _file_name(service["kind"]),
            _workload(settings, service["kind"], name, "database-admin", 1, pod),
        )
    )
    items.append(
        (
            "infrastructure/adminer-service.yaml",
            _service(settings, name, "database-admin", service["port"], node_port=service["node_port"]),
        )
    )


def _json_dump(value):
    return json.dumps(value, indent=2) + "\n"


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _worker_manifests(settings, worker, nodes, config_digest):
    name = "%s-worker" % worker["name"]
    infrastructure = settings["infrastructure"]
    env = [
        {"name": "DATA_MINER_WORKER", "value": worker["name"]},
        {"name": "DATA_MINER_CONFIG", "value": "%s/%s" % (settings["config_mount_path"].rstrip("/"), CONFIG_FILE)},
    ]
    if "postgres" in infrastructure:
        env.append(_config_env("DATABASE_URL", "DATABASE_URL"))
        env.append(_secret_env("PGPASSWORD", POSTGRES_SECRET, "password"))
    if "loki" in infrastructure:
        env.append(_config_env("LOKI_URL", "LOKI_URL"))
    if worker["hf_token"]:
        # optional: a token given later reaches the pods at their next start without a change to this manifest.
        env.append(_secret_env("HF_TOKEN", HF_SECRET, "HF_TOKEN", optional=True))
    gpu = worker["schedule_on"] == "gpu"
    if gpu and settings["gpu_sharing"] == "runtime":
        # nvidia is containerd's default runtime: it exposes the GPUs these variables ask for, with no limit.
        env.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"})
        env.append({"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"})
    for key, value in sorted(worker["env"].items()):
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        env.append({"name": key, "value": text})
    container = {"name": worker["name"], "image": settings["image"], "imagePullPolicy": settings["pull_policy"]}
    if worker["command"] is not None:
        container["command"] = list(worker["command"])
    if worker["args"] is not None:
        container["args"] = list(worker["args"])
    container["env"] = env
    resources = _resources(settings, worker["preset"])
    if gpu and settings["gpu_sharing"] == "device_plugin":
        resources["limits"][settings["gpu_resource"]] = 1
    container["resources"] = resources
    container["volumeMounts"] = [
        {"name": "config", "mountPath": settings["config_mount_path"], "readOnly": True},
        {"name": "shared", "mountPath": settings["seaweedfs_mount"], "mountPropagation": "HostToContainer"},
    ]
    if worker["liveness_probe"] is not None:
        container["livenessProbe"] = copy.deepcopy(worker["liveness_probe"])
    pod = {
        "affinity": _node_affinity(eligible_nodes(worker["schedule_on"], nodes)),
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": HOSTNAME_LABEL,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app": name}},
            }
        ],
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": CONFIGMAP, "items": [{"key": CONFIG_FILE, "path": CONFIG_FILE}]}},
            # Directory, not DirectoryOrCreate: without the SeaweedFS FUSE mount the pod waits instead of writing
            # to the node's own disk.
            {"name": "shared", "hostPath": {"path": settings["seaweedfs_mount"], "type": "Directory"}},
        ],
    }
    if gpu and settings["gpu_sharing"] == "device_plugin":
        pod["runtimeClassName"] = settings["runtime_class"]
    kind = worker["kind"]
    items = []
    if kind == "StatefulSet":
        items.append(("workers/%s-service.yaml" % worker["name"], _service(settings, name, "worker", None, True)))
    workload = _workload(
        settings, kind, name, "worker", worker["replicas"], pod, {"oceanid.fleet/config-hash": config_digest}
    )
    items.append(("workers/%s-%s.yaml" % (worker["name"], _file_name(kind)), workload))
    return items


def _secrets_errors(secrets, settings):
    errors = []
    if not _mapping(secrets):
        return ["secrets: expected {postgres_password, grafana_admin_password, hf_token}"]
    errors.extend(_unknown_keys(secrets, ("postgres_password", "grafana_admin_password", "hf_token"), "secrets"))
    weak = {"postgres_password": "postgres", "grafana_admin_password": "admin"}
    needed = {"postgres_password": "postgres", "grafana_admin_password": "grafana"}
    for key, service in needed.items():
        if service not in settings["infrastructure"]:
            continue
        value = secrets.get(key)
        if not _is_str(value) or len(value) < 12:
            errors.append("secrets.%s: expected a generated password of at least 12 characters" % key)
        elif value == weak[key]:
            errors.append("secrets.%s: the default password %r is refused" % (key, weak[key]))
    if secrets.get("hf_token") is not None and not _is_str(secrets.get("hf_token")):
        errors.append("secrets.hf_token: expected a string ('' for none)")
    return errors


def manifests(config, nodes, secrets, dump=None):
    """The stack's manifests in apply order: ``[{"path": ..., "manifest": ...}]``. DataMinerError lists every
    problem of the input."""
    errors = config_errors(config, nodes)
    settings = _settings(config) if _mapping(config) else None
    if settings is not None:
        errors.extend(_secrets_errors(secrets, settings))
    if errors:
        raise DataMinerError(errors)
    dump = dump or _json_dump
    infrastructure = settings["infrastructure"]
    node = infrastructure_node(nodes)
    apps = _section(config, "app_config")
    merged = app_config(apps.get("defaults"), apps.get("run_config"), apps.get("k3s_app_overrides"), config)
    data = {CONFIG_FILE: dump(merged)}
    if "postgres" in infrastructure:
        postgres = infrastructure["postgres"]
        data["DATABASE_URL"] = "postgresql://%s@%s:%d/%s" % (
            postgres["user"],
            _service_host(settings, "postgres"),
            postgres["port"],
            postgres["database"],
        )
    if "loki" in infrastructure:
        data["LOKI_URL"] = "http://%s:%d" % (_service_host(settings, "loki"), infrastructure["loki"]["port"])
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": settings["namespace"], "labels": _labels(settings, settings["namespace"], "namespace")},
    }
    items = [
        ("namespace.yaml", namespace),
        (
            "config/configmap.yaml",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _metadata(settings, CONFIGMAP, "config"),
                "data": data,
            },
        ),
    ]
    if secrets.get("hf_token"):
        items.append(
            ("config/secret-hf-token.yaml", _secret(settings, HF_SECRET, "config", {"HF_TOKEN": secrets["hf_token"]}))
        )
    if "postgres" in infrastructure:
        items.append(
            (
                "config/secret-postgres.yaml",
                _secret(
                    settings,
                    POSTGRES_SECRET,
                    "database",
                    {"user": infrastructure["postgres"]["user"], "password": secrets["postgres_password"]},
                ),
            )
        )
    if "grafana" in infrastructure:
        items.append(
            (
                "config/secret-grafana.yaml",
                _secret(
                    settings,
                    GRAFANA_SECRET,
                    "dashboard",
                    {"admin-user": "admin", "admin-password": secrets["grafana_admin_password"]},
                ),
            )
        )
    if "postgres" in infrastructure:
        _postgres(settings, infrastructure["postgres"], node, items)
    if "loki" in infrastructure:
        _loki(settings, infrastructure["loki"], node, items)
    if "grafana" in infrastructure:
        _grafana(settings, infrastructure["grafana"], node, items, dump)
    if "adminer" in infrastructure:
        _adminer(settings, infrastructure["adminer"], node, items)
    config_digest = _digest(data)
    for worker in settings["workers"]:
        items.extend(_worker_manifests(settings, worker, nodes, config_digest))
    return [{"path": path, "manifest": manifest} for path, manifest in items]
