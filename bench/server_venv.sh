# Sourced by serve.sh and dicomweb.sh: the virtualenv the benchmark *server* runs from.
#
# Production runs the python:3.11-slim image of the Dockerfile, a CPython built with PGO and
# LTO. This machine's default python3 (pyenv 3.11.7) is a shared-library build without them,
# and Lightbox's hot paths (reading headers, the ORM, DRF) run 25-30 % slower on it (measured
# side by side: bench/README.md). So the server gets its own venv, .venv-bench, made from
# Debian's /usr/bin/python3.11 (statically linked, optimised) when there is one.
# BENCH_PYTHON=python3 benchmarks the default interpreter instead.
BENCH_PYTHON=${BENCH_PYTHON:-$( [ -x /usr/bin/python3.11 ] && echo /usr/bin/python3.11 || echo python3 )}
SERVER_VENV=.venv-bench
if [ "$(cat "$SERVER_VENV/.made-from" 2>/dev/null)" != "$BENCH_PYTHON" ]; then
  rm -rf "$SERVER_VENV"
  "$BENCH_PYTHON" -m venv "$SERVER_VENV"
  "$SERVER_VENV/bin/pip" install -q --upgrade pip
  echo "$BENCH_PYTHON" > "$SERVER_VENV/.made-from"
fi
"$SERVER_VENV/bin/pip" install -q -r requirements.txt  # quick when nothing changed
echo "benchmark server: $("$SERVER_VENV/bin/python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
