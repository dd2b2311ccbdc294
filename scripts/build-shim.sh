#!/usr/bin/env bash
# Build the Java shim for every supported Flink line and put its two jars where the Python package
# finds them (heliosdb_flink_crypto/flink/versions.py lists the same lines):
#   heliosdb_flink_crypto/flink/jars/flink-LINE/heliosdb-flink-crypto-shim.jar  FileSystem plugin (enc+file://, ...)
#   heliosdb_flink_crypto/flink/jars/flink-LINE/heliosdb-flink-crypto-lib.jar   for Flink's lib/: metered state
#                                                                                backend, tenant checkpoint storage
# Needs Java 11+ and Maven 3.8 (dependencies come from Maven Central into ~/.m2).
#   scripts/build-shim.sh                 build every line without running the JUnit tests
#   scripts/build-shim.sh --test          also run the JUnit tests of every line: the *Test classes (no
#                                         Python) and the *ITCase classes (they start a Python through
#                                         pemja: that line's venv, whose pemja matches the line's)
#   scripts/build-shim.sh --test-fast     only the *Test classes (seconds; no Python started)
#   scripts/build-shim.sh [--test] 1.20   only the lines named
# The Python the tests start: HELIOSDB_PYTHON (default .venv) for 2.3, HELIOSDB_PYTHON_1_20 (default
# .venv-flink120) for 1.20. The wheel build (setup.py) runs this script without --test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ALL_LINES="2.3 1.20"
skip="-DskipTests"
case "${1:-}" in
  --test) skip=""; shift ;;
  --test-fast) skip="-DskipITs=true"; shift ;;
esac
lines="${*:-$ALL_LINES}"
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "build-shim.sh: '$tool' not on PATH: the shim jars need a JDK 11+ and Maven 3.8" >&2; exit 3; }
done
cd "$root/java-shim"
for line in $lines; do
  case " $ALL_LINES " in *" $line "*) ;; *) echo "build-shim.sh: unknown Flink line '$line' (supported: $ALL_LINES)" >&2; exit 2 ;; esac
  var="HELIOSDB_PYTHON_${line//./_}"
  if [[ "$line" == 2.3 ]]; then python="${HELIOSDB_PYTHON:-$root/.venv/bin/python}"
  else python="${!var:-$root/.venv-flink${line//./}/bin/python}"; fi
  mvn -q -B package $skip -P "flink-$line" -Dheliosdb.python="$python"
  jars="$root/heliosdb_flink_crypto/flink/jars/flink-$line"
  mkdir -p "$jars"
  # atomically: a cluster or test copying a jar meanwhile never sees half of it
  for pair in "heliosdb-flink-crypto-shim.jar:heliosdb-flink-crypto-shim.jar" \
              "heliosdb-flink-crypto-shim-lib.jar:heliosdb-flink-crypto-lib.jar"; do
    src="target/flink-$line/${pair%%:*}" dest="$jars/${pair##*:}"
    cp "$src" "$dest.tmp.$$"
    mv -f "$dest.tmp.$$" "$dest"
    echo "$dest"
  done
done
