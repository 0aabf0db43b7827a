"""``serving.cpu_features``: which CPUs have int8 dot products, from py-cpuinfo's view of real CPUs."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from serving.cpu_features import BF16, INT8_DOT, CpuFeatures, features_from, this_cpu

# Flags as /proc/cpuinfo lists them (x86 "flags", Arm "Features"), trimmed to a representative part.
ZEN3 = "fpu sse sse2 avx f16c fma bmi1 avx2 bmi2 sha_ni vaes vpclmulqdq"
ZEN4 = ZEN3 + " avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni avx512_bitalg"
SAPPHIRE_RAPIDS = ZEN4 + " avx_vnni amx_bf16 amx_tile amx_int8"
GRAVITON2 = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
)
GRAVITON3 = (
    GRAVITON2 + " sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16"
)


def _info(flags: str, **fields: object) -> dict[str, object]:
    return {"flags": flags.split(), **fields}


@pytest.mark.parametrize(
    ("flags", "vector", "int8_dot", "bf16"),
    [
        (ZEN3, "AVX2", (), ()),
        (ZEN4, "AVX-512", ("AVX512-VNNI",), ("AVX512-BF16",)),
        (SAPPHIRE_RAPIDS, "AVX-512", ("AMX-INT8", "AVX512-VNNI", "AVX-VNNI"), ("AMX-BF16", "AVX512-BF16")),
        (GRAVITON2, "NEON", ("Arm dot product",), ()),
        (GRAVITON3, "SVE", ("Arm dot product", "Arm I8MM"), ("Arm BF16",)),
        ("", None, (), ()),
    ],
    ids=["zen3", "zen4", "sapphire-rapids", "graviton2", "graviton3", "no-flags"],
)
def test_features_of_known_cpus(
    flags: str, vector: str | None, int8_dot: tuple[str, ...], bf16: tuple[str, ...]
) -> None:
    found = features_from(_info(flags, brand_raw="CPU", arch_string_raw="x"))
    assert (found.vector, found.int8_dot, found.bf16) == (vector, int8_dot, bf16)


def test_cpuid_flag_names_without_underscores_count_too() -> None:
    # py-cpuinfo names cpuid bits without underscores (avx512vnni) where /proc/cpuinfo has avx512_vnni.
    assert features_from(_info("avx2 avx512f avx512vnni amxint8")).int8_dot == ("AMX-INT8", "AVX512-VNNI")


def test_summary_and_dict_name_the_cpu() -> None:
    zen3 = features_from(
        _info(ZEN3, brand_raw=" AMD EPYC ", arch_string_raw="x86_64", family=25, model=1, stepping=1)
    )
    assert zen3 == CpuFeatures(brand="AMD EPYC", arch="x86_64", family=25, model=1, vector="AVX2")
    assert zen3.summary() == "AMD EPYC (x86_64, family 25 model 1): AVX2; int8 dot product: none"
    graviton = features_from(_info(GRAVITON2, brand_raw="Neoverse-N1", arch_string_raw="aarch64"))
    assert graviton.summary() == "Neoverse-N1 (aarch64): NEON; int8 dot product: Arm dot product"
    assert graviton.as_dict()["int8_dot"] == ["Arm dot product"]
    assert features_from({}).brand == "unknown CPU"
    assert features_from({"family": True}).family is None


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux's /proc/cpuinfo")
def test_this_cpu_agrees_with_proc_cpuinfo() -> None:
    """py-cpuinfo (cpuid in a child process) and the kernel's own flag list name the same instructions."""
    found = this_cpu()
    assert this_cpu() is found  # cached: the child process runs once
    assert found.arch == platform.machine()
    listed: set[str] = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            listed |= {flag.replace("_", "") for flag in value.split()}
    assert found.int8_dot == tuple(dict.fromkeys(name for flag, name in INT8_DOT if flag in listed))
    assert found.bf16 == tuple(dict.fromkeys(name for flag, name in BF16 if flag in listed))
    assert found.vector is not None
