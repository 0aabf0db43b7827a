#!/bin/sh
# Remove from a finished virtual environment what serving never loads; run in the image's build stage.
# Each entry was checked by running the image (make image-test): tests, C headers, the unused libclang bindings.
set -eu
VENV="${1:-/opt/venv}"
SITE="$(echo "$VENV"/lib/python3*/site-packages)"

# Packages' own test suites (pandas 35 MB, numpy 15 MB, ...); no runtime module imports a `tests` package.
find "$SITE" -depth -type d -name tests -prune -exec rm -rf {} +
# TensorFlow's C++ headers (~290 MB) are for building custom ops, never for running a model.
rm -rf "$SITE/tensorflow/include"
# libclang (~60 MB) is a TensorFlow install requirement that no TensorFlow module imports at run time.
rm -rf "$SITE/clang"
# Sources and headers of compiled extensions, type stubs.
find "$SITE" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' -o -name '*.c' -o -name '*.h' -o -name '*.hpp' \) -delete
# pip is only needed to build the environment (the image never installs anything at run time).
"$VENV/bin/python" -m pip uninstall --quiet --yes pip
