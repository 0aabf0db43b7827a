"""The CPU's vector, int8 and bfloat16 instructions (py-cpuinfo): whether reduced precision can pay here.

int8 inference is faster than fp32 only where the CPU multiplies int8 vectors into int32 sums in one
instruction (x86: AVX512-VNNI, AVX-VNNI, AMX-INT8; Arm: the dot-product extension, every Graviton). Without
them (x86 with AVX2 only, e.g. an AMD EPYC Zen 3) XNNPACK's int8 MobileNet ran at 0.86–1.0× its fp32 time,
against 0.30–0.41× on CPUs that have them (README, "Speed"). ``dr-serving model convert --quantize int8`` and
``dr-serving bench`` record this module's view of the CPU beside their timings, so that a ratio can be read
with the hardware it was measured on. Nothing here knows TensorFlow or LiteRT.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["BF16", "INT8_DOT", "CpuFeatures", "features_from", "this_cpu"]

#: Instruction sets with int8 dot products: (flag as /proc/cpuinfo or cpuid name it, without "_"; name).
INT8_DOT = (
    ("amxint8", "AMX-INT8"),
    ("avx512vnni", "AVX512-VNNI"),
    ("avxvnni", "AVX-VNNI"),
    ("asimddp", "Arm dot product"),
    ("i8mm", "Arm I8MM"),
)
#: Instruction sets with bfloat16 arithmetic (oneDNN computes fp32 convolutions in bf16 only with AMX).
BF16 = (("amxbf16", "AMX-BF16"), ("avx512bf16", "AVX512-BF16"), ("bf16", "Arm BF16"))
#: Widest vector instruction set, first match wins.
_VECTORS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sve", "SVE"), ("asimd", "NEON"), ("neon", "NEON"))


@dataclass(frozen=True, kw_only=True)
class CpuFeatures:
    """What a CPU offers for inference in reduced precision."""

    brand: str
    arch: str
    #: x86 family and model numbers (e.g. 25 and 1: AMD Zen 3), ``None`` where not reported.
    family: int | None = None
    model: int | None = None
    #: Widest vector instruction set (``AVX-512``, ``AVX2``, ``SVE``, ``NEON``), ``None`` when none is known.
    vector: str | None = None
    #: Instruction sets giving int8 dot products; empty: int8 is not expected to beat fp32.
    int8_dot: tuple[str, ...] = ()
    #: Instruction sets with bfloat16 arithmetic.
    bf16: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line, e.g. ``AMD EPYC (x86_64, family 25 model 1): AVX2; int8 dot product: none``."""
        where = self.arch
        if self.family is not None and self.model is not None:
            where += f", family {self.family} model {self.model}"
        vector = self.vector or "no known vector instructions"
        return f"{self.brand} ({where}): {vector}; int8 dot product: {', '.join(self.int8_dot) or 'none'}"

    def as_dict(self) -> dict[str, Any]:
        """The features as a JSON-ready dict (tuples as lists)."""
        found = asdict(self)
        return {name: list(value) if isinstance(value, tuple) else value for name, value in found.items()}


def features_from(info: Mapping[str, Any]) -> CpuFeatures:
    """The features a ``cpuinfo.get_cpu_info()`` dict describes (flag names with or without "_")."""
    flags = {str(flag).lower().replace("_", "") for flag in info.get("flags", ())}

    def present(table: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for flag, name in table if flag in flags))

    vectors = present(_VECTORS)
    return CpuFeatures(
        brand=str(info.get("brand_raw") or "unknown CPU").strip(),
        arch=str(info.get("arch_string_raw") or platform.machine() or "unknown"),
        family=_number(info.get("family")),
        model=_number(info.get("model")),
        vector=vectors[0] if vectors else None,
        int8_dot=present(INT8_DOT),
        bf16=present(BF16),
    )


@functools.cache
def this_cpu() -> CpuFeatures:
    """This machine's CPU (py-cpuinfo runs ``cpuid`` in a child process: about a second, so cached)."""
    import cpuinfo

    return features_from(cpuinfo.get_cpu_info())


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
