# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The k3s containerd template (module_utils/nvidia_containerd.py): expanded as k3s would, parsed as TOML, checked
for the CNI paths and runtimes, and (version 2) loaded by Debian's containerd (`containerd config dump`), a real
containerd parser. Debian's containerd is 1.6: it does not know config version 3, which is checked as TOML only."""

from __future__ import annotations

import shutil
import tomllib

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import nvidia_containerd as nc

CONTAINERD = shutil.which("containerd")
needs_containerd = pytest.mark.skipif(
    CONTAINERD is None, reason="Debian's containerd is not installed (apt-get install containerd): config dump not run"
)
VARIANTS = [(2, False), (3, False), (3, True)]


@pytest.mark.parametrize(("version", "default"), VARIANTS)
def test_every_case_k3s_can_be_in_expands_to_a_sound_config(version, default):
    template = nc.template_text(version, default_runtime=default)
    assert template.splitlines()[0].startswith("# " + nc.MARKER)
    assert '{{ template "base" . }}' in template
    assert nc.template_errors(template, version, default_runtime=default) == []
    assert len(nc.cases()) == 3


@pytest.mark.parametrize("version", [2, 3])
def test_the_runtime_is_written_once_whether_or_not_k3s_found_it(version):
    template = nc.template_text(version)
    for label, data in nc.cases():
        rendered = nc.render_as_k3s(template, version, data)
        assert rendered.count("BinaryName") == 1, label
        tree = tomllib.loads(rendered)
        cri = tree["plugins"][nc._CRI_RUNTIME[version]]
        nvidia = cri["containerd"]["runtimes"]["nvidia"]
        assert nvidia == {
            "runtime_type": "io.containerd.runc.v2",
            "options": {"BinaryName": "/usr/bin/nvidia-container-runtime", "SystemdCgroup": True},
        }


def test_the_seeds_bug_a_template_without_base_loses_the_cni_paths():
    """The data-miner seed's node went NotReady: its config.toml.tmpl had the nvidia runtime but no CNI paths."""
    seed_like = "\n".join(line for line in nc.template_text(2).splitlines() if 'template "base"' not in line)
    rendered = nc.render_as_k3s(seed_like, 2, nc.cases()[0][1])
    errors = nc.config_errors(rendered, 2)
    assert any("CNI bin_dir is missing" in e and "NotReady" in e for e in errors)
    assert any("conf_dir is missing" in e for e in errors)


def test_an_unguarded_runtime_section_is_refused_once_k3s_finds_the_runtime():
    unguarded = nc.template_text(3).replace('{{ if not (index .ExtraRuntimes "nvidia").BinaryName }}', "")
    unguarded = unguarded.replace("{{ end }}", "")
    errors = nc.template_errors(unguarded, 3)
    assert errors and all("k3s found the runtime" in e and "not valid TOML" in e for e in errors)


def test_a_default_runtime_cannot_go_into_a_version_2_template():
    with pytest.raises(ValueError, match="default-runtime"):
        nc.template_text(2, default_runtime=True)


def test_the_default_runtime_is_set_and_k3s_own_setting_is_not_doubled():
    template = nc.template_text(3, default_runtime=True)
    for label, data in nc.cases():
        tree = tomllib.loads(nc.render_as_k3s(template, 3, data))
        assert tree["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["default_runtime_name"] == "nvidia", label


def test_without_flannel_no_cni_section_is_expected():
    template = nc.template_text(3)
    assert nc.template_errors(template, 3, expect_cni=False) == []
    rendered = nc.render_as_k3s(template, 3, nc.default_data(cni_bin_dir="", cni_conf_dir=""))
    assert "cni" not in tomllib.loads(rendered)["plugins"]["io.containerd.cri.v1.runtime"]


def test_a_cgroup_driver_mismatch_and_a_wrong_binary_are_reported():
    rendered = nc.render_as_k3s(nc.template_text(3, binary_name="/opt/nvidia"), 3, nc.default_data())
    assert nc.config_errors(rendered, 3, binary_name="/usr/bin/nvidia-container-runtime") == [
        "runtime 'nvidia': options.BinaryName is '/opt/nvidia', expected '/usr/bin/nvidia-container-runtime'"
    ]
    head, _sep, tail = rendered.rpartition("SystemdCgroup = true")  # the last one is the NVIDIA runtime's
    broken = head + "SystemdCgroup = false" + tail
    assert any("SystemdCgroup" in e for e in nc.config_errors(broken, 3))


def test_k3s_postprocess_drops_blank_lines_and_spaces_tables():
    assert nc.k3s_postprocess("a = 1\n\n\n[x]\n  b = 2\n   \n[y]\n") == "a = 1\n\n[x]\n  b = 2\n\n[y]\n"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ range .ExtraRuntimes }}x{{ end }}", "unsupported template expression"),
        ("{{ if .SystemdCgroup }}x", "unclosed"),
        ("x{{ end }}", "unexpected {{ end }}"),
        ('{{ printf "%s" .Program }}', "unsupported"),
    ],
)
def test_constructs_the_evaluator_does_not_know_are_refused(template, message):
    with pytest.raises(nc.TemplateError, match=message):
        nc.expand(template, nc.default_data(), "")


def test_go_template_semantics_used_by_the_template():
    data = nc.default_data(extra_runtimes=nc.nvidia_detected())
    assert nc.expand('{{ if not (index .ExtraRuntimes "crun").BinaryName }}absent{{ end }}', data, "") == "absent"
    assert (
        nc.expand('{{ if (index .ExtraRuntimes "nvidia").BinaryName }}found{{ else }}no{{ end }}', data, "") == "found"
    )
    assert nc.expand("a  {{- /* c */ -}}  b {{ .SystemdCgroup }}", data, "") == "ab true"
    assert nc.expand('{{ template "base" . }}!', data, "BASE") == "BASE!"


@needs_containerd
@pytest.mark.parametrize("default", [False])
def test_debians_containerd_loads_every_version_2_expansion(default):
    template = nc.template_text(2, default_runtime=default)
    for label, data in nc.cases():
        code, output = nc.containerd_dump(nc.render_as_k3s(template, 2, data), CONTAINERD)
        assert code == 0, (label, output)
        dumped = tomllib.loads(output)
        cri = dumped["plugins"]["io.containerd.grpc.v1.cri"]
        assert cri["cni"]["bin_dir"] == "/var/lib/rancher/k3s/data/cni", label
        assert cri["cni"]["conf_dir"] == "/var/lib/rancher/k3s/agent/etc/cni/net.d", label
        nvidia = cri["containerd"]["runtimes"]["nvidia"]
        assert nvidia["runtime_type"] == "io.containerd.runc.v2", label
        assert nvidia["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime", label
        assert nvidia["options"]["SystemdCgroup"] is True, label
        if data["NodeConfig"]["DefaultRuntime"]:
            assert cri["containerd"]["default_runtime_name"] == "nvidia"


@needs_containerd
def test_debians_containerd_refuses_the_unguarded_template_once_k3s_finds_the_runtime():
    unguarded = nc.template_text(2).replace('{{ if not (index .ExtraRuntimes "nvidia").BinaryName }}', "")
    rendered = nc.render_as_k3s(unguarded.replace("{{ end }}", ""), 2, nc.cases()[1][1])
    code, output = nc.containerd_dump(rendered, CONTAINERD)
    assert code != 0 and "duplicated tables" in output
