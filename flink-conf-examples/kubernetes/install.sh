#!/usr/bin/env bash
# Installs heliosdb-flink-crypto into a Flink distribution: a Python venv with the package (and the
# PyFlink of the distribution's version, which brings the pemja its flink-python jar bundles), then
# `heliosdb-flink-crypto flink install --write-config` (jars into plugins/ and lib/, settings into
# conf/config.yaml). The Dockerfile beside it runs it; so does CI, against a copy of the Flink
# distribution PyFlink ships (tests/flink/test_wheel_e2e.py).
#
#   install.sh PACKAGE [FLINK_HOME]
#
# PACKAGE   the wheel (heliosdb_flink_crypto-*.whl) or a pip requirement (heliosdb-flink-crypto==0.1.0)
# FLINK_HOME  default $FLINK_HOME, else /opt/flink
# Environment (all optional):
#   HELIOSDB_VENV           the venv to create or reuse (default /opt/heliosdb/venv)
#   HELIOSDB_EXTRAS         pip extras of the package (default aws,metrics; empty for the base install)
#   HELIOSDB_PYFLINK        yes (default): apache-flink==<the distribution's version>, for PyFlink jobs;
#                           no: only the pemja of the distribution's flink-python jar (Java jobs)
#   HELIOSDB_KMS_URI        heliosdb.crypto.kms.uri (default: whatever conf/config.yaml has; required
#                           if it has none)
#   HELIOSDB_CHECKPOINT_DIR execution.checkpointing.dir (the savepoint dir is derived next to it)
#   HELIOSDB_SAVEPOINT_DIR  execution.checkpointing.savepoint-dir
#   HELIOSDB_FLINK_METRICS  yes (default) / no: the lib jar's crypto metrics in Flink's metric system
#   PYTHON                  the interpreter the venv is made from (default python3)
#   PIP_ARGS                pip arguments (default --no-cache-dir; e.g. --no-index --find-links /wheels)
set -euo pipefail

package=${1:?usage: install.sh PACKAGE [FLINK_HOME]}
flink_home=${2:-${FLINK_HOME:-/opt/flink}}
venv=${HELIOSDB_VENV:-/opt/heliosdb/venv}
extras=${HELIOSDB_EXTRAS-aws,metrics}
python=${PYTHON:-python3}

fail() { echo "install.sh: $*" >&2; exit 2; }
[ -d "$flink_home/lib" ] || fail "$flink_home is not a Flink distribution (no lib/ folder)"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
spec=$package
[ -n "$extras" ] && spec="$package[$extras]"
# shellcheck disable=SC2086
"$py" -m pip install -q ${PIP_ARGS---no-cache-dir} "$spec"
# the distribution's Flink version, as `flink install` reads it (a Flink of no supported line is refused)
version=$("$py" -c 'import sys
from heliosdb_flink_crypto.errors import UnsupportedFlinkError
from heliosdb_flink_crypto.flink import versions
home = sys.argv[1]
v = versions.distribution_version(home)
try:
    versions.line_for(v, home + "/lib/flink-dist-*.jar")
except UnsupportedFlinkError as e:
    sys.exit(f"install.sh: {e}")
print(v)' "$flink_home")
case ${HELIOSDB_PYFLINK:-yes} in
  yes) flink_req="apache-flink==$version" ;;
  no)
    # the pemja its flink-python bundles (its NOTICE names it), so the plugin and PyFlink share one
    jar=$(ls "$flink_home"/opt/flink-python*.jar "$flink_home"/lib/flink-python*.jar 2>/dev/null | head -n 1)
    [ -n "$jar" ] || fail "no flink-python jar in $flink_home/opt or lib"
    pemja=$("$py" -c 'import re, sys, zipfile
text = zipfile.ZipFile(sys.argv[1]).read("META-INF/NOTICE").decode("utf-8", "replace")
print(re.search(r"com\.alibaba:pemja:(?:jar:)?([0-9.]+)", text).group(1))' "$jar") \
      || fail "$jar does not name its pemja"
    flink_req="pemja==$pemja" ;;
  *) fail "HELIOSDB_PYFLINK must be yes or no" ;;
esac
# shellcheck disable=SC2086
"$py" -m pip install -q ${PIP_ARGS---no-cache-dir} "$spec" "$flink_req"

args=(flink install "$flink_home" --write-config --python "$py")
[ -n "${HELIOSDB_KMS_URI:-}" ] && args+=(--kms-uri "$HELIOSDB_KMS_URI")
[ -n "${HELIOSDB_CHECKPOINT_DIR:-}" ] && args+=(--checkpoint-dir "$HELIOSDB_CHECKPOINT_DIR")
[ -n "${HELIOSDB_SAVEPOINT_DIR:-}" ] && args+=(--savepoint-dir "$HELIOSDB_SAVEPOINT_DIR")
[ "${HELIOSDB_FLINK_METRICS:-yes}" = yes ] && args+=(--flink-metrics)
[ "${HELIOSDB_PYFLINK:-yes}" = yes ] && args+=(--python-jobs)
"$venv/bin/heliosdb-flink-crypto" "${args[@]}"
"$venv/bin/heliosdb-flink-crypto" --version
