"""The variants ``dr-serving bench`` measures, and how a served variant names the bare one it runs.

Their own module so that ``serving.bench`` and ``serving.bench_plots`` share one spelling of the
``<bare>+batch`` rule (``bench`` imports ``bench_plots``, so the rule cannot live in ``bench``).
"""

from __future__ import annotations

__all__ = ["BARE_VARIANTS", "SERVED_VARIANTS", "served_base"]

#: Bare variants, in table order.
BARE_VARIANTS = ("naive", "tf-fp32", "tf-bf16", "litert-fp32", "litert-int8")
#: Served variants and the ``serve`` flags that make them; ``<bare>+batch`` serves ``<bare>`` with
#: ``--micro-batch`` (its offline reference is the bare variant's).
SERVED_VARIANTS: dict[str, tuple[str, ...]] = {
    "tf-fp32": ("--backend", "savedmodel"),
    "tf-fp32+batch": ("--backend", "savedmodel", "--micro-batch", "8"),
    "tf-bf16": ("--backend", "savedmodel", "--precision", "bf16"),
    "litert-fp32": ("--backend", "litert"),
    "litert-int8": ("--precision", "int8"),
}


def served_base(variant: str) -> str:
    """The bare variant a served one runs: ``tf-fp32+batch`` → ``tf-fp32``."""
    return variant.split("+", 1)[0]
