#!/usr/bin/env bash
# Build the Java shim (Flink FileSystem plugin for enc+file://, enc+s3://, ...) and put the jar
# where the Python package finds it: heliosdb_flink_crypto/flink/jars/heliosdb-flink-crypto-shim.jar
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
dest="$root/heliosdb_flink_crypto/flink/jars/heliosdb-flink-crypto-shim.jar"
mkdir -p "$(dirname "$dest")"
# atomically: a cluster or test copying the jar meanwhile never sees half of it
cp target/heliosdb-flink-crypto-shim.jar "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
echo "$dest"
