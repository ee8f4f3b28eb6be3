# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner stack's Kubernetes manifests, built from a checked configuration.

Standard library only, Python 3.8. ``manifests(config, nodes, secrets, dump=None)`` returns
``[{"path": "<dir>/<file>.yaml", "manifest": {...}}]`` in apply order (the seed's layout: namespace.yaml,
config/, infrastructure/, workers/); ``dump`` turns a mapping into the text of a ConfigMap file (JSON when not
given; the filter passes YAML). The output depends only on the input. The configuration and the merge are in
data_miner_config.py and data_miner_app_config.py; their entry points are re-exported here.

Traps of the seed's "Issues Encountered" (002_040cd591b6393ee0.txt) prevented here: no liveness probe unless a
worker declares one; with ``gpu_sharing: runtime`` no ``nvidia.com/gpu`` limit (one GPU, several GPU pods); the
Grafana Loki and PostgreSQL datasource URLs are the in-cluster service names, never empty; ``''`` survives the
merge into config.yaml.
"""

import base64
import copy
import hashlib
import json

from ansible_collections.oceanid.fleet.plugins.module_utils.data_miner_app_config import (
    DataMinerError,
    app_config,
)
from ansible_collections.oceanid.fleet.plugins.module_utils.data_miner_config import (
    COMMON_LABELS,
    CONFIG_FILE,
    CONFIGMAP,
    GRAFANA_DATASOURCES,
    GRAFANA_SECRET,
    HF_SECRET,
    HOSTNAME_LABEL,
    POSTGRES_SECRET,
    config_errors,
    eligible_nodes,
    infrastructure_node,
    is_mapping,
    is_str,
    node_affinity,
    parse_range,
    section_of,
    settings_of,
    unknown_keys,
)

# The entry points the filters use: the checks and the merge live in data_miner_config.py and
# data_miner_app_config.py.
__all__ = ["DataMinerError", "app_config", "config_errors", "grafana_datasources", "manifests"]


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
    """A Deployment or StatefulSet; a StatefulSet's governing Service has the workload's name (the headless Service
    of PostgreSQL and of the StatefulSet workers, the ClusterIP or NodePort Service of the others)."""
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
    pod = {"affinity": node_affinity([node]), "containers": [container], "volumes": [volume]}
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
    pod = {"affinity": node_affinity([node]), "containers": [container], "volumes": [volume]}
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
    return _grafana_datasources(settings_of(config))


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
        "affinity": node_affinity([node]),
        "containers": [container],
        "volumes": [{"name": "datasources", "configMap": {"name": GRAFANA_DATASOURCES}}],
    }
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
    pod = {"affinity": node_affinity([node]), "containers": [container]}
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
        "affinity": node_affinity(eligible_nodes(worker["schedule_on"], nodes)),
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
            # Directory, not DirectoryOrCreate: the kubelet never creates the mount point, so a node without the
            # SeaweedFS mount point fails the pod instead of giving it a fresh local directory. HostToContainer: a
            # FUSE mount made (or remade) after the pod started is seen inside it.
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
    if not is_mapping(secrets):
        return ["secrets: expected {postgres_password, grafana_admin_password, hf_token}"]
    errors.extend(unknown_keys(secrets, ("postgres_password", "grafana_admin_password", "hf_token"), "secrets"))
    weak = {"postgres_password": "postgres", "grafana_admin_password": "admin"}
    needed = {"postgres_password": "postgres", "grafana_admin_password": "grafana"}
    for key, service in needed.items():
        if service not in settings["infrastructure"]:
            continue
        value = secrets.get(key)
        if not is_str(value) or len(value) < 12:
            errors.append("secrets.%s: expected a generated password of at least 12 characters" % key)
        elif value == weak[key]:
            errors.append("secrets.%s: the default password %r is refused" % (key, weak[key]))
    if secrets.get("hf_token") is not None and not is_str(secrets.get("hf_token")):
        errors.append("secrets.hf_token: expected a string ('' for none)")
    return errors


def manifests(config, nodes, secrets, dump=None):
    """The stack's manifests in apply order: ``[{"path": ..., "manifest": ...}]``. DataMinerError lists every
    problem of the input."""
    errors = config_errors(config, nodes)
    settings = settings_of(config) if is_mapping(config) else None
    if settings is not None:
        errors.extend(_secrets_errors(secrets, settings))
    if errors:
        raise DataMinerError(errors)
    dump = dump or _json_dump
    infrastructure = settings["infrastructure"]
    node = infrastructure_node(nodes)
    apps = section_of(config, "app_config")
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
