# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for lab.mirrors: apt sources and pip configuration, parsed from files in tmp_path.

Nothing here reads the machine's own configuration, resolves a name or runs pip. Host names are
documentation names (*.example.org); the lab never names a real registry either.
"""

from __future__ import annotations

import textwrap

import pytest

from lab import mirrors
from lab.mirrors import AptSource, Mirrors

ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
APT = "http://apt.example.org/debian"
SECURITY = "http://security.example.org/debian-security"


# --- one-line format (sources.list) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            f"deb {APT} bookworm main contrib",
            AptSource(["deb"], [APT], ["bookworm"], ["main", "contrib"]),
            id="plain",
        ),
        pytest.param(
            f"deb [signed-by={ARCHIVE_KEYRING}] {APT} bookworm main",
            AptSource(["deb"], [APT], ["bookworm"], ["main"], ARCHIVE_KEYRING),
            id="signed-by-only-option",
        ),
        pytest.param(
            f"deb [arch=amd64 signed-by={ARCHIVE_KEYRING}] {APT} bookworm main",
            AptSource(["deb"], [APT], ["bookworm"], ["main"], ARCHIVE_KEYRING),
            id="signed-by-last-option",
        ),
        pytest.param(
            f"deb [signed-by=/etc/apt/keyrings/corp.gpg arch=amd64] {APT} bookworm main",
            AptSource(["deb"], [APT], ["bookworm"], ["main"], "/etc/apt/keyrings/corp.gpg"),
            id="signed-by-first-option",
        ),
        pytest.param(
            f"deb [ arch=amd64 signed-by={ARCHIVE_KEYRING} ] {APT} bookworm main",
            AptSource(["deb"], [APT], ["bookworm"], ["main"], ARCHIVE_KEYRING),
            id="options-with-inner-spaces",
        ),
        pytest.param(
            f"deb [arch=amd64] {APT} bookworm main",
            AptSource(["deb"], [APT], ["bookworm"], ["main"]),
            id="options-without-signed-by",
        ),
        pytest.param(
            f"deb-src {APT} bookworm main",
            AptSource(["deb-src"], [APT], ["bookworm"], ["main"]),
            id="deb-src",
        ),
        pytest.param(
            f"deb {APT} bookworm main non-free-firmware   # the main archive",
            AptSource(["deb"], [APT], ["bookworm"], ["main", "non-free-firmware"]),
            id="trailing-comment",
        ),
        pytest.param(
            f"\tdeb   {SECURITY}\tbookworm-security  main  ",
            AptSource(["deb"], [SECURITY], ["bookworm-security"], ["main"]),
            id="odd-whitespace",
        ),
    ],
)
def test_parse_one_line_entry(line, expected):
    assert mirrors._parse_one_line(line) == [expected]  # pylint: disable=protected-access


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(f"# deb {APT} bookworm main", id="commented-out"),
        pytest.param("#", id="bare-hash"),
        pytest.param("", id="empty"),
        pytest.param("   \t ", id="blank"),
        pytest.param("rpm http://rpm.example.org/ fedora main", id="not-apt"),
        pytest.param("deb", id="type-only"),
        pytest.param(f"deb {APT}", id="no-suite"),
    ],
)
def test_parse_one_line_ignores_non_entries(line):
    assert mirrors._parse_one_line(line) == []  # pylint: disable=protected-access


def test_parse_one_line_whole_file_in_order():
    text = textwrap.dedent(f"""\
        # Debian sources, one per line
        deb [signed-by={ARCHIVE_KEYRING}] {APT} bookworm main
        deb-src {APT} bookworm main

        # deb http://old.example.org/debian bullseye main
        deb {SECURITY} bookworm-security main
    """)
    assert mirrors._parse_one_line(text) == [  # pylint: disable=protected-access
        AptSource(["deb"], [APT], ["bookworm"], ["main"], ARCHIVE_KEYRING),
        AptSource(["deb-src"], [APT], ["bookworm"], ["main"]),
        AptSource(["deb"], [SECURITY], ["bookworm-security"], ["main"]),
    ]


# --- deb822 format (*.sources) ------------------------------------------------------------------

DEB822 = textwrap.dedent(f"""\
    # Written by the installer
    Types: deb deb-src
    URIs: {APT}
    Suites: bookworm bookworm-updates
    Components: main contrib
    Signed-By: {ARCHIVE_KEYRING}

    # A stanza split over continuation lines, with a comment inside
    Types: deb
    URIs: http://a.example.org/debian
     http://b.example.org/debian
    Suites: bookworm
    # Components: nothing-to-see
    Components: main
     non-free-firmware

    Enabled: no
    Types: deb
    URIs: http://disabled.example.org/debian
    Suites: bookworm
    Components: main

    # A stanza of comments only
    # URIs: http://commented.example.org/debian


    URIs: {SECURITY}
    Suites: bookworm-security
    Components: main
""")


def test_parse_deb822_stanzas():
    assert mirrors._parse_deb822(DEB822) == [  # pylint: disable=protected-access
        AptSource(["deb", "deb-src"], [APT], ["bookworm", "bookworm-updates"], ["main", "contrib"], ARCHIVE_KEYRING),
        AptSource(
            ["deb"],
            ["http://a.example.org/debian", "http://b.example.org/debian"],
            ["bookworm"],
            ["main", "non-free-firmware"],
        ),
        # No Types: field means deb, as apt reads it.
        AptSource(["deb"], [SECURITY], ["bookworm-security"], ["main"]),
    ]


@pytest.mark.parametrize(
    ("enabled", "kept"),
    [("no", False), ("No", False), ("NO", False), ("yes", True), ("Yes", True)],
)
def test_parse_deb822_enabled_field(enabled, kept):
    text = f"Types: deb\nURIs: {APT}\nSuites: bookworm\nComponents: main\nEnabled: {enabled}\n"
    assert len(mirrors._parse_deb822(text)) == (1 if kept else 0)  # pylint: disable=protected-access


def test_parse_deb822_field_names_are_case_insensitive():
    text = f"types: deb\nuris: {APT}\nSUITES: bookworm\ncomponents: main\nsigned-by: {ARCHIVE_KEYRING}\n"
    assert mirrors._parse_deb822(text) == [  # pylint: disable=protected-access
        AptSource(["deb"], [APT], ["bookworm"], ["main"], ARCHIVE_KEYRING),
    ]


def test_parse_deb822_embedded_key_does_not_leak_into_other_fields():
    text = textwrap.dedent(f"""\
        Types: deb
        URIs: {APT}
        Signed-By:
         -----BEGIN PGP PUBLIC KEY BLOCK-----
         .
         mQINBGNoExampleKeyMaterial
         Comment: not a field of its own
         -----END PGP PUBLIC KEY BLOCK-----
        Suites: bookworm
        Components: main
    """)
    [source] = mirrors._parse_deb822(text)  # pylint: disable=protected-access
    assert (source.uris, source.suites, source.components) == ([APT], ["bookworm"], ["main"])
    assert "BEGIN PGP PUBLIC KEY BLOCK" in source.signed_by
    assert "Comment: not a field of its own" in source.signed_by


def test_parse_deb822_without_uris_is_not_a_source():
    assert mirrors._parse_deb822("Types: deb\nSuites: bookworm\nComponents: main\n") == []  # pylint: disable=protected-access


# --- what the lab derives from the sources ------------------------------------------------------


def test_debootstrap_mirror_is_the_first_deb_source_with_suite_and_main():
    found = Mirrors(
        apt=[
            AptSource(["deb-src"], ["http://src.example.org/debian"], ["bookworm"], ["main"]),
            AptSource(["deb"], ["http://contrib.example.org/debian"], ["bookworm"], ["contrib"]),
            AptSource(["deb"], [SECURITY], ["bookworm-security"], ["main"]),
            AptSource(["deb"], [APT, "http://second.example.org/debian"], ["bookworm", "bookworm-updates"], ["main"]),
            AptSource(["deb"], ["http://later.example.org/debian"], ["bookworm"], ["main"]),
        ]
    )
    assert found.debootstrap_mirror("bookworm") == APT


@pytest.mark.parametrize(
    "apt",
    [
        pytest.param([], id="no-sources"),
        pytest.param([AptSource(["deb"], [APT], ["trixie"], ["main"])], id="other-release"),
        pytest.param([AptSource(["deb"], [APT], ["bookworm-updates"], ["main"])], id="only-updates"),
        pytest.param([AptSource(["deb-src"], [APT], ["bookworm"], ["main"])], id="only-deb-src"),
        pytest.param([AptSource(["deb"], [APT], ["bookworm"], ["contrib"])], id="no-main"),
    ],
)
def test_debootstrap_mirror_fails_when_nothing_serves_the_suite(apt):
    with pytest.raises(RuntimeError, match=r"no apt source on this machine serves 'bookworm main'"):
        Mirrors(apt=apt).debootstrap_mirror("bookworm")


def test_apt_sources_for_keeps_the_release_and_drops_the_rest():
    found = Mirrors(
        apt=[
            AptSource(
                ["deb", "deb-src"],
                [APT],
                ["bookworm", "bookworm-updates", "trixie"],
                ["main", "contrib"],
                ARCHIVE_KEYRING,
            ),
            AptSource(["deb"], [SECURITY], ["bookworm-security"], ["main"], "/etc/apt/keyrings/corp.gpg"),
            AptSource(["deb-src"], [APT], ["bookworm"], ["main"]),
            AptSource(["deb"], [APT], ["bullseye", "bullseye-updates"], ["main"]),
            AptSource(["deb"], [APT], ["trixie"], ["main"], ARCHIVE_KEYRING),
            # Not bookworm, only a name that starts like it.
            AptSource(["deb"], [APT], ["bookwormish"], ["main"]),
        ]
    )
    assert found.apt_sources_for("bookworm") == textwrap.dedent(f"""\
        # Written by the oceanid lab from the machine's own apt sources.

        Types: deb
        URIs: {APT}
        Suites: bookworm bookworm-updates
        Components: main contrib
        Signed-By: {ARCHIVE_KEYRING}

        Types: deb
        URIs: {SECURITY}
        Suites: bookworm-security
        Components: main
    """)


def test_apt_sources_for_a_release_the_machine_does_not_use_has_no_stanza():
    found = Mirrors(apt=[AptSource(["deb"], [APT], ["trixie"], ["main"])])
    assert "Types:" not in found.apt_sources_for("bookworm")


def test_hostnames_from_apt_then_pip_without_duplicates():
    found = Mirrors(
        apt=[
            AptSource(["deb"], [APT, "https://user@b.example.org:8443/debian"], ["bookworm"], ["main"]),
            AptSource(["deb"], [SECURITY], ["bookworm-security"], ["main"]),
            AptSource(["deb-src"], [APT], ["bookworm"], ["main"]),
            AptSource(["deb"], ["file:///srv/local-repo"], ["bookworm"], ["main"]),
        ],
        pip_hosts=["pip.example.org", "apt.example.org", "files.example.org"],
    )
    assert found.hostnames == [
        "apt.example.org",
        "b.example.org",
        "security.example.org",
        "pip.example.org",
        "files.example.org",
    ]


# --- reading the machine's files (here: files in tmp_path) --------------------------------------


@pytest.fixture
def apt_dirs(tmp_path, monkeypatch):
    sources_list = tmp_path / "sources.list"
    sources_dir = tmp_path / "sources.list.d"
    sources_dir.mkdir()
    monkeypatch.setattr(mirrors, "APT_SOURCES", [sources_list])
    monkeypatch.setattr(mirrors, "APT_SOURCES_DIR", sources_dir)
    return sources_list, sources_dir


def test_read_apt_sources_reads_list_and_sources_files_only(apt_dirs):
    sources_list, sources_dir = apt_dirs
    sources_list.write_text(f"deb {APT} bookworm main\n")
    (sources_dir / "b-security.list").write_text(f"deb {SECURITY} bookworm-security main\n")
    (sources_dir / "a-debian.sources").write_text(
        f"Types: deb\nURIs: {APT}\nSuites: bookworm-updates\nComponents: main\n"
    )
    # apt reads only *.list and *.sources: everything else in the directory is not a source.
    (sources_dir / "c-disabled.list.disabled-by-x").write_text("deb http://disabled.example.org/debian bookworm main\n")
    (sources_dir / "d-disabled.sources.disabled-by-x").write_text(
        "Types: deb\nURIs: http://disabled.example.org/debian\nSuites: bookworm\nComponents: main\n"
    )
    (sources_dir / "e.list.save").write_text("deb http://saved.example.org/debian bookworm main\n")
    (sources_dir / "README").write_text("deb http://readme.example.org/debian bookworm main\n")

    found = mirrors.read_apt_sources()

    assert found == [
        AptSource(["deb"], [APT], ["bookworm"], ["main"]),  # sources.list first
        AptSource(["deb"], [APT], ["bookworm-updates"], ["main"]),  # then the directory, sorted
        AptSource(["deb"], [SECURITY], ["bookworm-security"], ["main"]),
    ]


def test_read_apt_sources_without_any_file(apt_dirs, monkeypatch, tmp_path):
    monkeypatch.setattr(mirrors, "APT_SOURCES_DIR", tmp_path / "absent.d")
    assert mirrors.read_apt_sources() == []


def test_read_apt_sources_deb822_only_machine(apt_dirs):
    _sources_list, sources_dir = apt_dirs
    (sources_dir / "debian.sources").write_text(DEB822)
    found = Mirrors(apt=mirrors.read_apt_sources())
    assert found.debootstrap_mirror("bookworm") == APT


# --- pip ----------------------------------------------------------------------------------------

DEFAULT_PIP_HOSTS = ["index.example.org", "files.example.org"]


@pytest.fixture
def pip_conf(tmp_path, monkeypatch):
    """Point read_pip_config at one pip.conf in tmp_path; return a function that writes it."""
    conf = tmp_path / "pip.conf"
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(mirrors, "_pip_config_files", lambda: [tmp_path / "absent.conf", conf])
    monkeypatch.setattr(mirrors, "_pip_default_hosts", lambda: list(DEFAULT_PIP_HOSTS))

    def _write(text: str) -> None:
        conf.write_text(textwrap.dedent(text))

    return _write


def test_pip_index_url_and_extra_indexes(pip_conf, monkeypatch):
    monkeypatch.setattr(mirrors, "_pip_default_hosts", lambda: pytest.fail("pip's defaults asked for"))
    pip_conf("""\
        [global]
        index-url = https://pip.example.org/root/mirror/+simple/
        extra-index-url =
            file:///srv/wheels/simple
            https://extra.example.org/simple
            http://plain.example.org:8080/simple
        cert = /etc/ssl/certs/ca-certificates.crt
    """)
    assert mirrors.read_pip_config() == (
        "https://pip.example.org/root/mirror/+simple/",
        ["pip.example.org", "extra.example.org", "plain.example.org"],
    )


def test_pip_without_index_url_asks_pip_for_its_default_hosts(pip_conf):
    pip_conf("""\
        [global]
        timeout = 60
        extra-index-url = file:///srv/wheels/simple https://extra.example.org/simple
    """)
    assert mirrors.read_pip_config() == (None, [*DEFAULT_PIP_HOSTS, "extra.example.org"])


def test_pip_without_any_configuration(pip_conf):
    assert mirrors.read_pip_config() == (None, DEFAULT_PIP_HOSTS)


def test_pip_index_url_from_install_section(pip_conf):
    pip_conf("""\
        [install]
        index-url = https://install.example.org/simple
    """)
    assert mirrors.read_pip_config() == ("https://install.example.org/simple", ["install.example.org"])


def test_pip_environment_wins_over_files(pip_conf, monkeypatch):
    pip_conf("""\
        [global]
        index-url = https://file.example.org/simple
        extra-index-url = https://file-extra.example.org/simple
    """)
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example.org/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///srv/wheels https://env-extra.example.org/simple")
    assert mirrors.read_pip_config() == (
        "https://env.example.org/simple",
        ["env.example.org", "env-extra.example.org"],
    )


def test_pip_local_index_is_not_handed_to_hosts(pip_conf):
    pip_conf("""\
        [global]
        index-url = file:///srv/wheels/simple
        extra-index-url = https://extra.example.org/simple
    """)
    # A host cannot read the machine's disk: no index URL for its pip.conf, no host to allow.
    assert mirrors.read_pip_config() == (None, ["extra.example.org"])


def test_pip_index_url_with_percent_encoded_credentials(pip_conf):
    pip_conf("""\
        [global]
        index-url = https://ci:p%40ss@pip.example.org/simple
    """)
    assert mirrors.read_pip_config() == ("https://ci:p%40ss@pip.example.org/simple", ["pip.example.org"])


def test_pip_config_files_follow_pip_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path}/xdg1:{tmp_path}/xdg2")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "env.conf"))
    assert mirrors._pip_config_files() == [  # pylint: disable=protected-access
        tmp_path / "xdg1/pip/pip.conf",
        tmp_path / "xdg2/pip/pip.conf",
        mirrors.Path("/etc/pip.conf"),
        tmp_path / "home/.pip/pip.conf",
        tmp_path / "home/.config/pip/pip.conf",
        tmp_path / "env.conf",  # last: it wins, as in pip
    ]


def test_read_combines_apt_and_pip(apt_dirs, pip_conf):
    sources_list, _sources_dir = apt_dirs
    sources_list.write_text(f"deb {APT} bookworm main\n")
    pip_conf("""\
        [global]
        index-url = https://pip.example.org/simple
    """)
    found = mirrors.read()
    assert found.pip_index_url == "https://pip.example.org/simple"
    assert found.hostnames == ["apt.example.org", "pip.example.org"]
