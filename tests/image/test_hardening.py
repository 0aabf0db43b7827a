"""The runtime file system of every image holds no attacker's toolbox: no setuid/setgid bit, no shell, no
package manager, no perl or openssl command; it runs as uid/gid 10001 with glibc told to give memory back.

Checked on the exported file system of a created container (``docker export``), as an attacker would find it.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import pytest

from dr_image.containers import USER, docker
from tests.image.conftest import MALLOC

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: Commands that must not exist anywhere on PATH-like folders of the runtime stage.
FORBIDDEN = {
    "sh", "bash", "dash", "rbash", "ash", "zsh", "ksh", "busybox",
    "apt", "apt-get", "apt-cache", "apt-config", "apt-key", "apt-mark",
    "dpkg", "dpkg-deb", "dpkg-query", "dpkg-divert", "dpkg-split", "dpkg-trigger", "dpkg-maintscript-helper",
    "perl", "openssl",
}  # fmt: skip
BIN_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "opt/venv/bin")


@dataclass
class Exported:
    """What a walk over an image's exported file system found."""

    image: str
    files: int
    special_bits: list[str]
    forbidden: list[str]
    passwd: str
    dpkg_status: bool


def export_walk(image: str) -> Exported:
    """Stream ``docker export`` of a created (never started) container of ``image`` through ``tarfile``."""
    name = docker("create", image).stdout.strip()
    special, forbidden, passwd, files, status = [], [], "", 0, False
    try:
        with subprocess.Popen(["docker", "export", name], stdout=subprocess.PIPE) as export:
            assert export.stdout is not None
            with tarfile.open(fileobj=export.stdout, mode="r|") as tar:
                for member in tar:
                    files += 1
                    path = PurePosixPath(member.name.lstrip("./"))
                    if member.mode & 0o6000 and not member.isdir():
                        special.append(f"{path} {oct(member.mode)}")
                    if str(path.parent) in BIN_DIRS and path.name in FORBIDDEN:
                        forbidden.append(str(path))
                    if str(path) == "etc/passwd":
                        handle = tar.extractfile(member)
                        passwd = handle.read().decode() if handle else ""
                    status = status or str(path) == "var/lib/dpkg/status"
    finally:
        docker("rm", "--force", name, check=False)
    return Exported(image, files, special, forbidden, passwd, status)


@pytest.fixture(scope="module", params=["lite", "full", "lab", "lite-arm64"])
def image(request: pytest.FixtureRequest) -> str:
    """Each amd64 flavour as the tests build it (the lab image too), and the arm64 lite image."""
    if request.param == "lite-arm64":
        return str(request.getfixturevalue("arm64_lite_image"))
    if request.param == "lab":
        return str(request.getfixturevalue("lab_image"))
    return str(request.getfixturevalue("built_images")[request.param])


@pytest.fixture(scope="module")
def exported(image: str) -> Exported:
    """The walk over ``image``'s exported file system."""
    return export_walk(image)


def test_no_setuid_or_setgid_bits(exported: Exported) -> None:
    assert exported.files > 1000, "the export walk saw almost nothing"
    assert exported.special_bits == []


def test_no_shell_package_manager_perl_or_openssl(exported: Exported) -> None:
    assert exported.forbidden == []
    assert exported.dpkg_status, "the package database is kept for image scanners"


def test_runs_as_uid_and_gid_10001_known_to_passwd(image: str, exported: Exported) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert config["User"] == USER
    assert "dr:x:10001:10001:" in exported.passwd


def test_glibc_gives_memory_back(image: str) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    env = dict(item.split("=", 1) for item in config["Env"])
    assert {key: env.get(key) for key in MALLOC} == MALLOC


def test_the_shell_is_really_gone(built_images: dict[str, str]) -> None:
    """A shell as the entrypoint cannot start: the runtime stage has none."""
    result = docker("run", "--rm", "--entrypoint", "sh", built_images["lite"], "-c", "id", check=False)
    assert result.returncode != 0
    assert "executable file not found" in result.stderr
