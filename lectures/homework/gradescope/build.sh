#!/usr/bin/env bash
# Write the Gradescope autograder zip of one assignment:
#     lectures/homework/gradescope/build.sh planar_flow     # -> autograder_planar_flow.zip
# Upload it as the assignment's autograder ("Zip file upload", Ubuntu 24.04 base image).
set -euo pipefail
name="${1:?usage: build.sh ASSIGNMENT [OUTPUT.zip]}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
out="$(realpath -m "${2:-autograder_$name.zip}")"
# The whole list first, then the lookup: `grade --list | grep -q` can fail under pipefail
# when grep exits at the first match and the writer gets SIGPIPE.
names="$(PYTHONPATH="$repo" python3 -m nflows_np grade --list)"
grep -qx -- "$name" <<<"$names" || { echo "build.sh: unknown assignment $name" >&2; exit 2; }

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/source"
cp "$here/setup.sh" "$here/run_autograder" "$stage/"
cp "$repo/requirements.txt" "$stage/source/"
cp -r "$repo/nflows_np" "$stage/source/"
find "$stage/source" -name __pycache__ -prune -exec rm -rf {} +
echo "$name" > "$stage/source/ASSIGNMENT"
chmod +x "$stage/setup.sh" "$stage/run_autograder"
rm -f "$out"
(cd "$stage" && python3 -m zipfile -c "$out" setup.sh run_autograder source)
echo "wrote $out"
