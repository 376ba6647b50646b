#!/usr/bin/env bash
# Builds the Lambda layer digitaltwin_requirements the seed's way, for people who upload it in the
# console (Lambda > Layers > Create layer): python.zip with python/ at its root, from
# layer/requirements.txt, the same file `sam build` installs from.
#
#   cloud/build-layer.sh [OUTPUT.zip]      (default: cloud/build/python.zip)
#
# The packages are installed for the Lambda's platform (x86_64, Python 3.13, manylinux wheels),
# not for this machine, so bcrypt's compiled part matches what runs in AWS. PYTHON and
# LAYER_PYTHON_VERSION / LAYER_PLATFORM override the choices.
set -euo pipefail
cloud="$(cd "$(dirname "$0")" && pwd)"
output="${1:-$cloud/build/python.zip}"
python="${PYTHON:-python3}"
version="${LAYER_PYTHON_VERSION:-3.13}"
platform="${LAYER_PLATFORM:-manylinux2014_x86_64}"

command -v "$python" >/dev/null || { echo "error: $python is not installed" >&2; exit 1; }
"$python" -c 'import zipfile' || exit 1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/python" "$(dirname "$output")"

echo "==> installing $cloud/layer/requirements.txt into python/ (Python $version, $platform)" >&2
"$python" -m pip install --quiet --disable-pip-version-check --no-compile \
    --target "$work/python" --platform "$platform" --implementation cp --python-version "$version" \
    --only-binary=:all: -r "$cloud/layer/requirements.txt"

# zip -r without the zip program: Python's zipfile, python/ at the archive's root.
"$python" - "$work" "$output" <<'PY'
import os, sys, zipfile
work, output = sys.argv[1], os.path.abspath(sys.argv[2])
with zipfile.ZipFile(output + ".tmp", "w", zipfile.ZIP_DEFLATED) as archive:
    for folder, _, files in os.walk(os.path.join(work, "python")):
        for name in sorted(files):
            path = os.path.join(folder, name)
            archive.write(path, os.path.relpath(path, work))
os.replace(output + ".tmp", output)
PY
echo "==> $output ($(du -h "$output" | cut -f1)): upload it as the layer digitaltwin_requirements" >&2
