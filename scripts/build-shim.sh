#!/usr/bin/env bash
# Build the Java shim and put its two jars where the Python package finds them:
#   heliosdb_flink_crypto/flink/jars/heliosdb-flink-crypto-shim.jar  FileSystem plugin (enc+file://, enc+s3://, ...)
#   heliosdb_flink_crypto/flink/jars/heliosdb-flink-crypto-lib.jar   for Flink's lib/: metered state backend,
#                                                                    tenant checkpoint storage
# Needs Java 11+ and Maven 3.8 (dependencies come from Maven Central into ~/.m2).
#   scripts/build-shim.sh            build without running the JUnit tests
#   scripts/build-shim.sh --test     also run the JUnit tests (they start the venv's Python via pemja)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
skip="-DskipTests"
if [[ "${1:-}" == "--test" ]]; then skip=""; fi
python="${HELIOSDB_PYTHON:-$root/.venv/bin/python}"
cd "$root/java-shim"
mvn -q -B package $skip -Dheliosdb.python="$python"
jars="$root/heliosdb_flink_crypto/flink/jars"
mkdir -p "$jars"
# atomically: a cluster or test copying a jar meanwhile never sees half of it
for pair in "heliosdb-flink-crypto-shim.jar:heliosdb-flink-crypto-shim.jar" \
            "heliosdb-flink-crypto-shim-lib.jar:heliosdb-flink-crypto-lib.jar"; do
  src="target/${pair%%:*}" dest="$jars/${pair##*:}"
  cp "$src" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
  echo "$dest"
done
