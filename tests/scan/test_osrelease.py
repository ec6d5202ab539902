"""os-release parsing and the OSV ecosystem names derived from it."""

from __future__ import annotations

from cargohold.scan.model import OSInfo
from cargohold.scan.osrelease import distro_ecosystem, os_info_from_release, parse_os_release


def test_parse_quotes_escapes_and_comments():
    text = (
        "# comment\n"
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
        "ID=debian\n"
        "VERSION_ID='12'\n"
        'NAME="A \\"quoted\\" \\$name"\n'
        "garbage line without equals\n"
        "ID_LIKE=\n"
    )
    values = parse_os_release(text)
    assert values["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert values["VERSION_ID"] == "12"
    assert values["NAME"] == 'A "quoted" $name'
    info = os_info_from_release(values)
    assert info == OSInfo("debian", "12", "Debian GNU/Linux 12 (bookworm)", None, ())


def test_ecosystems():
    deb = OSInfo("debian", "12", "Debian GNU/Linux 12 (bookworm)")
    assert distro_ecosystem(deb, "debian") == ("Debian:12", "debian", "debian-12")
    sid = OSInfo("debian", None, "Debian GNU/Linux trixie/sid")
    assert distro_ecosystem(sid, "debian") == ("Debian", "debian", None)
    alp = OSInfo("alpine", "3.19.1", "Alpine Linux v3.19")
    assert distro_ecosystem(alp, "alpine") == ("Alpine:v3.19", "alpine", "alpine-3.19")
    ubu = OSInfo("ubuntu", "22.04", "Ubuntu 22.04.4 LTS")
    assert distro_ecosystem(ubu, "debian") == ("Ubuntu:22.04:LTS", "ubuntu", "ubuntu-22.04")
    assert distro_ecosystem(None, "debian") == ("Debian", "debian", None)
    assert distro_ecosystem(None, "alpine") == ("Alpine", "alpine", None)
