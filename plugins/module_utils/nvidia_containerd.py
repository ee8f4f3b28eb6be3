# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The k3s containerd template of the nvidia_runtime role: written, expanded as k3s would, and checked.

Standard library only (TOML parsing needs Python 3.11's ``tomllib``; where it is missing the TOML checks say so).

k3s (``pkg/agent/containerd/config.go``, ``pkg/agent/templates``) renders
``<data-dir>/agent/etc/containerd/config.toml`` on every start from a user template when one exists:
``config-v3.toml.tmpl`` (containerd config version 3) is looked up first, then ``config.toml.tmpl`` (version 2).
The user template is a Go text/template in which ``{{ template "base" . }}`` renders k3s's own configuration;
k3s then removes blank lines and puts one blank line before every line that starts with ``[``.

The facts used here are those of specs/k3s.json (``containerd`` and ``nvidia_runtime_on_k3s``, k3s-io/k3s at
469d009fb2b4): the fields of the two stock templates, the data passed to the template (``ExtraRuntimes``,
``SystemdCgroup``, ``NodeConfig.DefaultRuntime``, ``NodeConfig.AgentConfig.CNIBinDir/CNIConfDir``), and that k3s
itself adds the runtime ``nvidia`` to the base when it finds ``nvidia-container-runtime`` at start. That last
fact is why the runtime section of our template is guarded: written unconditionally, it would define the same
TOML table twice once the toolkit is installed, and containerd would refuse the whole file (the node NotReady).

* ``template_text()`` is the template the role writes (one source for the role and the tests);
* ``base_config()`` reconstructs the configuration k3s renders for ``{{ template "base" . }}`` from the field
  lists (not k3s's code: the layout is ours, the tables and keys are k3s's);
* ``expand()`` evaluates the small subset of Go's text/template our template uses (anything else is refused),
  and ``k3s_postprocess()`` applies k3s's blank-line rule;
* ``config_errors()`` parses the result as TOML and checks the CNI paths, runc and the NVIDIA runtime, and
  ``template_errors()`` does all of that for every case k3s can be in (runtime detected or not, a
  ``default-runtime`` set or not);
* ``containerd_dump()`` loads a version 2 result with a real containerd (``containerd --config F config dump``).
"""

import os
import re
import subprocess
import tempfile

try:
    import tomllib as _toml
except ImportError:  # Python < 3.11 (managed hosts): the TOML checks report that they could not run
    _toml = None

MARKER = "Managed by oceanid.fleet nvidia_runtime"
TEMPLATE_NAMES = {2: "config.toml.tmpl", 3: "config-v3.toml.tmpl"}
DATA_DIR = "/var/lib/rancher/k3s"
RUNC_TYPE = "io.containerd.runc.v2"
# The CRI plugin that holds runtimes and CNI, and the one that holds images, per config version.
_CRI_RUNTIME = {2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}
_CRI_IMAGES = {2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.images"}


class TemplateError(Exception):
    """The template uses a construct expand() does not evaluate, or is malformed."""


def _q(version, name):
    """A TOML key as k3s quotes it: single quotes in the v3 template, double quotes in the v2 one."""
    return "'%s'" % name if version == 3 else '"%s"' % name


def template_name(version):
    if version not in TEMPLATE_NAMES:
        raise ValueError("containerd config version must be 2 or 3, not %r" % (version,))
    return TEMPLATE_NAMES[version]


def template_text(
    version, runtime_name="nvidia", binary_name="/usr/bin/nvidia-container-runtime", default_runtime=False
):
    """The Go template the role writes: k3s's base, the NVIDIA runtime unless k3s found it, optionally the default.

    With version 2 the default runtime cannot be added here: the base always renders
    ``[plugins."io.containerd.grpc.v1.cri".containerd]`` (the snapshotter), and a TOML table cannot be opened
    twice; k3s's own ``default-runtime`` setting does it instead (ValueError here, a preflight failure in the role).
    """
    template_name(version)
    if default_runtime and version == 2:
        raise ValueError(
            "a default runtime cannot be appended to the version 2 base template; set k3s default-runtime instead"
        )
    cri = "plugins.%s" % _q(version, _CRI_RUNTIME[version])
    runtime = "%s.containerd.runtimes.%s" % (cri, _q(version, runtime_name))
    lines = [
        "# %s: k3s's own configuration plus the NVIDIA runtime." % MARKER,
        "# k3s renders config.toml from this template on every start. Another tool's template is never overwritten;",
        "# to hand this file back, remove it (or this marker line) and restart k3s.",
        '{{ template "base" . }}',
        "{{- /* k3s adds the runtime itself when it finds the binary at start: defining it twice is a TOML error */}}",
        '{{ if not (index .ExtraRuntimes "%s").BinaryName }}' % runtime_name,
        "[%s]" % runtime,
        '  runtime_type = "%s"' % RUNC_TYPE,
        "[%s.options]" % runtime,
        '  BinaryName = "%s"' % binary_name,
        "  SystemdCgroup = {{ .SystemdCgroup }}",
        "{{ end }}",
    ]
    if default_runtime:
        lines += [
            "{{- /* the base renders this table only when k3s has a default-runtime of its own */}}",
            "{{ if not .NodeConfig.DefaultRuntime }}",
            "[%s.containerd]" % cri,
            '  default_runtime_name = "%s"' % runtime_name,
            "{{ end }}",
        ]
    return "\n".join(lines) + "\n"


def default_data(
    systemd_cgroup=True,
    extra_runtimes=None,
    default_runtime="",
    cni_bin_dir=DATA_DIR + "/data/cni",
    cni_conf_dir=DATA_DIR + "/agent/etc/cni/net.d",
    pause_image="rancher/mirrored-pause:3.6",
    snapshotter="overlayfs",
):
    """The template data (``.``) of a k3s agent, with k3s's default paths (specs/k3s.json ``containerd.paths``).

    ``extra_runtimes`` maps a runtime name to ``{"RuntimeType", "BinaryName"}`` (what k3s found on PATH).
    ``cni_bin_dir``/``cni_conf_dir`` are empty with ``flannel-backend: none``.
    """
    return {
        "SystemdCgroup": bool(systemd_cgroup),
        "DisableCgroup": False,
        "IsRunningInUserNS": False,
        "EnableUnprivileged": True,
        "NonrootDevices": False,
        "ExtraRuntimes": dict(extra_runtimes or {}),
        "Program": "k3s",
        "NodeConfig": {
            "DefaultRuntime": default_runtime,
            "SELinux": False,
            "Containerd": {
                "Root": DATA_DIR + "/agent/containerd",
                "State": "/run/k3s/containerd",
                "Address": "/run/k3s/containerd/containerd.sock",
                "Opt": DATA_DIR + "/agent/containerd",
                "Registry": DATA_DIR + "/agent/etc/containerd/certs.d",
            },
            "AgentConfig": {
                "PauseImage": pause_image,
                "Snapshotter": snapshotter,
                "CNIBinDir": cni_bin_dir,
                "CNIConfDir": cni_conf_dir,
            },
        },
    }


def nvidia_detected(binary_name="/usr/bin/nvidia-container-runtime", runtime_name="nvidia"):
    """``ExtraRuntimes`` as k3s builds it when it finds the NVIDIA runtime at start."""
    return {runtime_name: {"RuntimeType": RUNC_TYPE, "BinaryName": binary_name}}


def _b(value):
    return "true" if value else "false"


def base_config(version, data):
    """The configuration k3s renders for ``{{ template "base" . }}``, rebuilt from specs/k3s.json's field lists
    (``v2_default_template_fields`` / ``v3_default_template_fields``) for a plain overlayfs agent."""
    template_name(version)
    node = data["NodeConfig"]
    ctd = node["Containerd"]
    agent = node["AgentConfig"]

    def q(name):
        return _q(version, name)

    cri_rt = "plugins.%s" % q(_CRI_RUNTIME[version])
    out = [
        "# File generated by k3s. DO NOT EDIT. Use %s instead."
        % ("config-v3.toml.tmpl" if version == 3 else "config.toml.tmpl"),
        "version = %d" % version,
        'imports = ["%s/agent/etc/containerd/%s/*.toml"]'
        % (DATA_DIR, "config-v3.toml.d" if version == 3 else "config.toml.d"),
        'root = "%s"' % ctd["Root"],
        'state = "%s"' % ctd["State"],
        "[grpc]",
        '  address = "%s"' % ctd["Address"],
        "[plugins.%s]" % q("io.containerd.internal.v1.opt"),
        '  path = "%s"' % ctd["Opt"],
        "[plugins.%s]" % q("io.containerd.grpc.v1.cri"),
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "10010"',
    ]
    runtime_keys = [
        "  enable_selinux = %s" % _b(node.get("SELinux")),
        "  enable_unprivileged_ports = %s" % _b(data.get("EnableUnprivileged")),
        "  enable_unprivileged_icmp = %s" % _b(data.get("EnableUnprivileged")),
        "  device_ownership_from_security_context = %s" % _b(data.get("NonrootDevices")),
    ]
    if data.get("DisableCgroup"):
        runtime_keys.append("  disable_cgroup = true")
    if data.get("IsRunningInUserNS"):
        runtime_keys += ["  disable_apparmor = true", "  restrict_oom_score_adj = true"]
    snapshot_annotations = _b(agent["Snapshotter"] not in ("stargz", "nix"))
    if version == 2:
        out += runtime_keys
        out.append('  sandbox_image = "%s"' % agent["PauseImage"])
        out += [
            "[%s.containerd]" % cri_rt,
            '  snapshotter = "%s"' % agent["Snapshotter"],
            "  disable_snapshot_annotations = %s" % snapshot_annotations,
        ]
        if node.get("DefaultRuntime"):
            out.append('  default_runtime_name = "%s"' % node["DefaultRuntime"])
        if agent.get("CNIBinDir") or agent.get("CNIConfDir"):
            out += [
                "[%s.cni]" % cri_rt,
                '  bin_dir = "%s"' % agent["CNIBinDir"],
                '  conf_dir = "%s"' % agent["CNIConfDir"],
            ]
    else:
        out.append("[%s]" % cri_rt)
        out += runtime_keys
        out += [
            "[plugins.%s]" % q(_CRI_IMAGES[version]),
            '  snapshotter = "%s"' % agent["Snapshotter"],
            "  disable_snapshot_annotations = %s" % snapshot_annotations,
            "  use_local_image_pull = true",
            "[plugins.%s.pinned_images]" % q(_CRI_IMAGES[version]),
            '  sandbox = "%s"' % agent["PauseImage"],
        ]
        if agent.get("CNIBinDir") or agent.get("CNIConfDir"):
            out += [
                "[%s.cni]" % cri_rt,
                '  bin_dirs = ["%s"]' % agent["CNIBinDir"],
                '  conf_dir = "%s"' % agent["CNIConfDir"],
            ]
        if node.get("DefaultRuntime"):
            out += ["[%s.containerd]" % cri_rt, '  default_runtime_name = "%s"' % node["DefaultRuntime"]]
    out += [
        "[%s.containerd.runtimes.runc]" % cri_rt,
        '  runtime_type = "%s"' % RUNC_TYPE,
        "[%s.containerd.runtimes.runc.options]" % cri_rt,
        "  SystemdCgroup = %s" % _b(data.get("SystemdCgroup")),
        "[%s.containerd.runtimes.runhcs-wcow-process]" % cri_rt,
        '  runtime_type = "io.containerd.runhcs.v1"',
    ]
    for name in sorted(data.get("ExtraRuntimes") or {}):
        runtime = data["ExtraRuntimes"][name]
        out += [
            "[%s.containerd.runtimes.%s]" % (cri_rt, q(name)),
            '  runtime_type = "%s"' % runtime.get("RuntimeType", ""),
        ]
        if runtime.get("BinaryName"):
            out += [
                "[%s.containerd.runtimes.%s.options]" % (cri_rt, q(name)),
                '  BinaryName = "%s"' % runtime["BinaryName"],
                "  SystemdCgroup = %s" % _b(data.get("SystemdCgroup")),
            ]
    out += ["[plugins.%s.registry]" % q(_CRI_IMAGES[version]), '  config_path = "%s"' % ctd["Registry"]]
    return "\n".join(out) + "\n"


# --- A small evaluator for the Go text/template constructs our template uses -------------------------------------

_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_INDEX_FIELD = re.compile(r'^\(index\s+(\.[A-Za-z0-9_.]+)\s+"([^"]*)"\)((?:\.[A-Za-z0-9_]+)*)$')
_FIELD = re.compile(r"^(\.[A-Za-z0-9_]+)+$|^\.$")


def _lookup(data, path):
    value = data
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            value = value.get(part, "")
        else:
            raise TemplateError("can't evaluate field %s in %r" % (part, path))
    return value


def _evaluate(expr, data):
    expr = expr.strip()
    if expr.startswith("not "):
        return not _truth(_evaluate(expr[4:], data))
    match = _INDEX_FIELD.match(expr)
    if match:
        mapping = _lookup(data, match.group(1))
        if not isinstance(mapping, dict):
            raise TemplateError("index of a non-map in %r" % expr)
        # Go: a missing key gives the zero value of the map's element type (a struct with empty fields here)
        return _lookup(mapping.get(match.group(2), {}), match.group(3))
    if _FIELD.match(expr):
        return data if expr == "." else _lookup(data, expr)
    raise TemplateError("unsupported template expression %r" % expr)


def _truth(value):
    # Go's text/template: false, 0, nil, and empty strings, slices and maps are false
    return bool(value)


def _render_value(value):
    if isinstance(value, bool):
        return _b(value)
    return "%s" % (value,)


def expand(template, data, base):
    """Evaluate ``template`` with ``data`` as k3s's text/template would, ``base`` standing for the "base" template.

    Supported: text, comments, trim markers, ``template "base" .``, ``if``/``else``/``end``, and the
    expressions ``.Field.Path``, ``(index .Map "key").Field`` and ``not X``. Anything else raises TemplateError.
    """
    tokens = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        if match.group(1):
            text = text.rstrip()
        if tokens and tokens[-1][0] == "trim_next":
            tokens.pop()
            text = text.lstrip()
        tokens.append(("text", text))
        tokens.append(("action", match.group(2).strip()))
        if match.group(3):
            tokens.append(("trim_next", None))
        pos = match.end()
    text = template[pos:]
    if tokens and tokens[-1][0] == "trim_next":
        tokens.pop()
        text = text.lstrip()
    tokens.append(("text", text))
    if "{{" in "".join(t[1] for t in tokens if t[0] == "text") or any("}}" in t[1] for t in tokens if t[0] == "text"):
        raise TemplateError("unbalanced {{ }} in the template")

    out = []
    stack = []  # per open "if": [active_before, condition, in_else]
    active = True
    for kind, value in tokens:
        if kind == "text":
            if active:
                out.append(value)
            continue
        if value.startswith("/*") and value.endswith("*/"):
            continue
        if value.startswith("if "):
            condition = _truth(_evaluate(value[3:], data)) if active else False
            stack.append([active, condition, False])
            active = active and condition
        elif value == "else":
            if not stack or stack[-1][2]:
                raise TemplateError("unexpected {{ else }}")
            stack[-1][2] = True
            active = stack[-1][0] and not stack[-1][1]
        elif value == "end":
            if not stack:
                raise TemplateError("unexpected {{ end }}")
            active = stack.pop()[0]
        elif value in ('template "base" .', 'template "base"'):
            if active:
                out.append(base)
        else:
            if active:
                out.append(_render_value(_evaluate(value, data)))
    if stack:
        raise TemplateError("unclosed {{ if }} in the template")
    return "".join(out)


def k3s_postprocess(text):
    """k3s's trimEmpty: drop blank lines, then a blank line before every line that starts with ``[``."""
    lines = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("["):
            lines.append("")
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_as_k3s(template, version, data):
    """The config.toml k3s would write from ``template`` (our reconstruction of the base included)."""
    return k3s_postprocess(expand(template, data, base_config(version, data)))


# --- Checks ---------------------------------------------------------------------------------------------------------


def _get(tree, *keys):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def config_errors(text, version, runtime_name="nvidia", binary_name=None, default_runtime=False, expect_cni=True):
    """Every problem of a rendered config.toml for a GPU node; empty when it is sound.

    Checked: it parses as TOML; ``version``; the CNI ``bin_dir``/``bin_dirs`` and ``conf_dir`` (unless the node
    runs without flannel); runc untouched; the NVIDIA runtime with ``runtime_type`` runc v2, an absolute
    ``BinaryName`` (``binary_name`` when given) and ``SystemdCgroup`` equal to runc's; the default runtime.
    """
    if _toml is None:
        return ["the TOML checks need Python 3.11 (tomllib); not run"]
    try:
        tree = _toml.loads(text)
    except Exception as exc:  # tomllib.TOMLDecodeError, with the line and column
        return ["not valid TOML: %s" % exc]
    errors = []
    if tree.get("version") != version:
        errors.append("version is %r, expected %d" % (tree.get("version"), version))
    cri = _get(tree, "plugins", _CRI_RUNTIME[version]) or {}
    if expect_cni:
        cni = cri.get("cni") or {}
        bin_ok = cni.get("bin_dir") if version == 2 else cni.get("bin_dirs")
        if not bin_ok:
            errors.append(
                "the CNI %s is missing from [plugins.%s.cni]: pods get no network and the node goes NotReady"
                % ("bin_dir" if version == 2 else "bin_dirs", _CRI_RUNTIME[version])
            )
        if not cni.get("conf_dir"):
            errors.append("the CNI conf_dir is missing from [plugins.%s.cni]" % _CRI_RUNTIME[version])
    runtimes = _get(cri, "containerd", "runtimes") or {}
    runc = runtimes.get("runc") or {}
    if runc.get("runtime_type") != RUNC_TYPE:
        errors.append("the runc runtime of k3s's base is missing or changed")
    runc_cgroup = _get(runc, "options", "SystemdCgroup")
    nvidia = runtimes.get(runtime_name)
    if not isinstance(nvidia, dict):
        errors.append("the runtime %r is missing" % runtime_name)
    else:
        if nvidia.get("runtime_type") != RUNC_TYPE:
            errors.append(
                "runtime %r: runtime_type is %r, expected %r" % (runtime_name, nvidia.get("runtime_type"), RUNC_TYPE)
            )
        binary = _get(nvidia, "options", "BinaryName")
        if not isinstance(binary, str) or not binary.startswith("/"):
            errors.append("runtime %r: options.BinaryName is %r, expected an absolute path" % (runtime_name, binary))
        elif binary_name and binary != binary_name:
            errors.append("runtime %r: options.BinaryName is %r, expected %r" % (runtime_name, binary, binary_name))
        cgroup = _get(nvidia, "options", "SystemdCgroup")
        if cgroup != runc_cgroup:
            errors.append(
                "runtime %r: options.SystemdCgroup is %r, runc's is %r (they must agree)"
                % (runtime_name, cgroup, runc_cgroup)
            )
    default_name = _get(cri, "containerd", "default_runtime_name")
    if default_runtime and default_name != runtime_name:
        errors.append("default_runtime_name is %r, expected %r" % (default_name, runtime_name))
    return errors


def cases(binary_name="/usr/bin/nvidia-container-runtime", runtime_name="nvidia", systemd_cgroup=True, expect_cni=True):
    """The situations k3s can render the template in: the runtime found by k3s or not, a k3s default-runtime or not."""
    cni = {} if expect_cni else {"cni_bin_dir": "", "cni_conf_dir": ""}
    out = []
    for detected in (False, True):
        for k3s_default in ("", runtime_name):
            if k3s_default and not detected:
                continue  # k3s refuses a default-runtime it did not detect ("default runtime ... was not found")
            label = "k3s %s the runtime%s" % (
                "found" if detected else "did not find",
                ", k3s default-runtime: %s" % k3s_default if k3s_default else "",
            )
            extra = nvidia_detected(binary_name, runtime_name) if detected else {}
            out.append((label, default_data(systemd_cgroup, extra, k3s_default, **cni)))
    return out


def template_errors(
    template,
    version,
    runtime_name="nvidia",
    binary_name="/usr/bin/nvidia-container-runtime",
    default_runtime=False,
    systemd_cgroup=True,
    expect_cni=True,
    containerd=None,
):
    """Every problem of ``template`` in each case of ``cases()``, each message prefixed with its case.

    With ``containerd`` (the path of a containerd binary) and version 2, each expansion that passed the checks is
    also loaded with ``containerd config dump``.
    """
    errors = []
    if MARKER not in template:
        errors.append("the template lacks the marker %r" % MARKER)
    for label, data in cases(binary_name, runtime_name, systemd_cgroup, expect_cni):
        try:
            rendered = render_as_k3s(template, version, data)
        except TemplateError as exc:
            errors.append("%s: %s" % (label, exc))
            continue
        found = config_errors(rendered, version, runtime_name, binary_name, default_runtime, expect_cni)
        errors.extend("%s: %s" % (label, error) for error in found)
        if containerd and version == 2 and not found:
            code, output = containerd_dump(rendered, containerd)
            if code != 0:
                errors.append("%s: containerd config dump refused it: %s" % (label, output.strip()[-500:]))
    return errors


def containerd_dump(text, containerd="containerd", timeout=60):
    """Load ``text`` with ``containerd --config FILE config dump``: ``(returncode, output)``.

    A real containerd parser; meaningful for config version 2 with containerd 1.x (Debian's), which does not
    know version 3.
    """
    fd, path = tempfile.mkstemp(prefix="nvidia-containerd-", suffix=".toml")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        proc = subprocess.run(
            [containerd, "--config", path, "config", "dump"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        return proc.returncode, proc.stdout.decode("utf-8", "replace")
    finally:
        os.unlink(path)
