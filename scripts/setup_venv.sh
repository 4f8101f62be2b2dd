#!/usr/bin/env bash
# Builds the Python virtualenv the outside-client tests use: pymesos 0.3.15 and marathon
# (marathon-python) 0.13.0, both unchanged from PyPI, on any Python 3.8 .. 3.13.
#
#   scripts/setup_venv.sh [VENV_DIR] [PYTHON]     (defaults: <repo>/.venv, python3)
#
# Idempotent: when VENV_DIR already imports both at the right versions nothing is done.
#
# The one difficulty is pymesos' dependency `http-parser` 0.9.0 (an sdist from 2019): its
# setup.py imports `imp` (gone in Python 3.12) and always compiles a C extension generated for
# old CPython headers (<longintrepr.h> moved in 3.11), so `pip install pymesos` fails on a
# current Python while building that wheel. The package also carries a pure-Python parser
# (http_parser/pyparser.py) that http_parser.http falls back to when the C module is absent,
# and pymesos copes with that parser. So http-parser is installed from its own sdist with a
# setup.py of ours that builds no extension; then pymesos and marathon install normally.
# Nothing here depends on anything outside this repository.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=${1:-$ROOT/.venv}
PY=${2:-python3}
PYMESOS_VERSION=0.3.15
MARATHON_VERSION=0.13.0
HTTP_PARSER_VERSION=0.9.0

say() { printf '[setup_venv] %s\n' "$*" >&2; }

# Succeeds when the venv already has what the tests need.
venv_ready() {
    [[ -x $VENV/bin/python ]] || return 1
    "$VENV/bin/python" - "$PYMESOS_VERSION" "$MARATHON_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("pymesos") == sys.argv[1]
assert version("marathon") == sys.argv[2]
import http_parser.http  # noqa: F401
import pymesos  # noqa: F401
import marathon  # noqa: F401
PY
}

if venv_ready; then
    say "$VENV already has pymesos $PYMESOS_VERSION and marathon $MARATHON_VERSION"
    exit 0
fi

command -v "$PY" >/dev/null || { say "ERROR: $PY not found"; exit 1; }
say "creating $VENV with $("$PY" --version 2>&1)"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip setuptools wheel

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Fetching the sdist makes pip run its original setup.py for metadata, which needs `imp`:
# a minimal stand-in module on PYTHONPATH serves it on 3.12+ (--no-build-isolation lets
# PYTHONPATH reach setup.py; the venv's setuptools provides distutils there).
mkdir -p "$WORK/compat"
cat >"$WORK/compat/imp.py" <<'PY'
"""Just enough of the removed `imp` module for http-parser 0.9.0's setup.py."""
import importlib.util
import sys


def load_source(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module
PY
say "fetching http-parser $HTTP_PARSER_VERSION (sdist)"
PYTHONPATH="$WORK/compat${PYTHONPATH:+:$PYTHONPATH}" \
    "$VENV/bin/pip" download -q --disable-pip-version-check --no-build-isolation --no-deps \
    --no-binary :all: "http-parser==$HTTP_PARSER_VERSION" -d "$WORK"
tar -xzf "$WORK/http-parser-$HTTP_PARSER_VERSION.tar.gz" -C "$WORK"
SRC=$WORK/http-parser-$HTTP_PARSER_VERSION

# Keep only the Python sources: no C/Cython files, no prebuilt .so, no build config.
rm -f "$SRC"/http_parser/*.{c,h,pyx,so,gyp} "$SRC/pyproject.toml"
cat >"$SRC/setup.py" <<PY
from setuptools import setup

setup(
    name="http-parser",
    version="$HTTP_PARSER_VERSION",
    description="HTTP request/response parser (pure-Python build, no C extension)",
    packages=["http_parser"],
)
PY

say "installing http-parser (pure Python), pymesos $PYMESOS_VERSION, marathon $MARATHON_VERSION"
"$VENV/bin/pip" install -q --disable-pip-version-check "$SRC"
"$VENV/bin/pip" install -q --disable-pip-version-check "pymesos==$PYMESOS_VERSION" \
    "marathon==$MARATHON_VERSION"

"$VENV/bin/python" - <<'PY'
import http_parser.http as h
import marathon  # noqa: F401
import pymesos
from importlib.metadata import version

# The pure-Python parser must be the one in use (the C module was not built).
assert h.HttpParser.__module__ == "http_parser.pyparser", h.HttpParser.__module__
print("[setup_venv] pymesos", pymesos.__VERSION__, "marathon", version("marathon"),
      "OK; HttpParser from", h.HttpParser.__module__)
PY
venv_ready || { say "ERROR: $VENV was built but does not import pymesos/marathon"; exit 1; }
