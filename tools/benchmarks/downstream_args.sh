# Sourced by seg.sh and det.sh: `run_downstream CKPT CONFIG [WORK_DIR] [options]` runs tools/downstream.py, an
# optional WORK_DIR positional becoming --work-dir (tools/downstream.py picks the default work dir).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY=${PYTHON:-$ROOT/.venv/bin/python}
[[ -x $PY ]] || PY=python

run_downstream() {
    local ckpt=$1 config=$2
    shift 2
    if [[ $# -gt 0 && $1 != -* ]]; then
        set -- --work-dir "$1" "${@:2}"
    fi
    exec "$PY" "$ROOT/tools/downstream.py" "$config" "$ckpt" "$@"
}
