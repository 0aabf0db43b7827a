#!/bin/sh
# Remove from a finished virtual environment what serving never loads; run in the image's build stage, after
# `pip check`:  sh slim-venv.sh VENV [PRUNE_LIST]
# Each entry was checked by running the image (make image-test): tests, C headers, the unused libclang bindings,
# the distributions of PRUNE_LIST (docker/prune/<flavour>.txt), LiteRT's GPU/NPU payload.
set -eu
VENV="${1:-/opt/venv}"
PRUNE="${2:-}"
SITE="$(echo "$VENV"/lib/python3*/site-packages)"

# Distributions that a package's metadata requires but no route imports (docker/prune/<flavour>.txt says why).
if [ -n "$PRUNE" ] && [ -f "$PRUNE" ]; then
  names="$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PRUNE")"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip uninstall --quiet --yes $names
fi
# Packages' own test suites (pandas 35 MB, numpy 15 MB, ...); no runtime module imports a `tests` package.
find "$SITE" -depth -type d -name tests -prune -exec rm -rf {} +
# TensorFlow's C++ headers (~290 MB) are for building custom ops, never for running a model.
rm -rf "$SITE/tensorflow/include"
# libclang (~60 MB) is a TensorFlow install requirement that no TensorFlow module imports at run time.
rm -rf "$SITE/clang"
# LiteRT's WebGPU accelerator (19 MB, loaded only when a GPU is asked for), its NPU compiler plugins and
# ahead-of-time tools (vendors/, tools/, aot/: 11 MB); the CPU interpreter (XNNPACK) loads none of them.
rm -rf "$SITE/ai_edge_litert/libLiteRtWebGpuAccelerator.so" "$SITE/ai_edge_litert/vendors" \
  "$SITE/ai_edge_litert/tools" "$SITE/ai_edge_litert/aot"
# Sources and headers of compiled extensions, type stubs.
find "$SITE" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' -o -name '*.c' -o -name '*.h' -o -name '*.hpp' \) -delete
# Symbol tables of extension modules (`strip --strip-unneeded` keeps what the dynamic linker needs): uvloop's
# 13.6 MB loop module becomes 1.6 MB, Pillow's core 3.5 → 0.8 MB (strip: binutils, build stage only). Left
# alone: auditwheel's vendored copies in `*.libs/` (patchelf-edited; stripped, numpy's OpenBLAS no longer loads)
# and TensorFlow. Every stripped file is then loaded once, so a broken one fails the build, not a pod.
if command -v strip >/dev/null 2>&1; then
  "$VENV/bin/python" - "$SITE" <<'PY'
import ctypes, os, subprocess, sys

stripped = []
for root, dirs, files in os.walk(sys.argv[1]):
    dirs[:] = [d for d in dirs if not d.endswith(".libs") and d != "tensorflow"]
    for name in files:
        path = os.path.join(root, name)
        if not (name.endswith(".so") or ".so." in name) or os.path.islink(path):
            continue
        sections = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, check=True).stdout
        if b" .symtab " in sections:
            subprocess.run(["strip", "--strip-unneeded", path], check=True)
            stripped.append(path)
for path in stripped:
    ctypes.CDLL(path, mode=os.RTLD_LAZY)
print(f">> stripped and loaded {len(stripped)} shared objects", flush=True)
# Exit without finalizing: an extension module loaded as a plain library (never imported) can call into Python
# from its destructors at exit and abort (matplotlib's pybind11 modules in the lab image do).
os._exit(0)
PY
fi
# Pillow's codecs and fonts for what the predictor never opens (serving.imaging.ACCEPTED_FORMATS: JPEG and PNG
# only): AVIF (libavif 4.9 MB), WebP, FreeType/HarfBuzz text, Tk. PIL reports them as unsupported.
rm -f "$SITE"/PIL/_avif.*.so "$SITE"/PIL/_webp.*.so "$SITE"/PIL/_imagingft.*.so "$SITE"/PIL/_imagingtk.*.so \
  "$SITE"/pillow.libs/libavif-* "$SITE"/pillow.libs/libwebp* "$SITE"/pillow.libs/libsharpyuv-* \
  "$SITE"/pillow.libs/libfreetype-* "$SITE"/pillow.libs/libharfbuzz-* "$SITE"/pillow.libs/libbrotli* \
  "$SITE"/pillow.libs/libpng16-*
# pip is only needed to build the environment (the image never installs anything at run time).
"$VENV/bin/python" -m pip uninstall --quiet --yes pip
