# Sourced by the sbatch scripts in the repository root (GANMOTION_HOME), where they cd first.

fail() { echo "error: $*" >&2; exit 1; }

# The interpreter with ganmotion installed: PYTHON, else the repository's .venv (made by
# `make`), else python3 from PATH (sbatch passes the submitting shell's environment on).
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    [[ -x .venv/bin/python ]] && PYTHON=$PWD/.venv/bin/python
fi

# list_entry LIST: this array task's entry of a list file (one path per line; blank lines and
# lines starting with # are not entries). Sets ENTRY, the path on entry number
# SLURM_ARRAY_TASK_ID (from 1), and NAME, its file name without the extension (the output's).
list_entry() {
    local list=$1
    [[ -f $list ]] || fail "list $list does not exist"
    [[ -n ${SLURM_ARRAY_TASK_ID:-} ]] || fail "not an array job: sbatch --array=1-N (N = entries in $list)"
    mapfile -t entries < <(grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*#' "$list")
    (( ${#entries[@]} > 0 )) || fail "$list lists no files"
    (( SLURM_ARRAY_TASK_ID >= 1 && SLURM_ARRAY_TASK_ID <= ${#entries[@]} )) ||
        fail "array task $SLURM_ARRAY_TASK_ID, but $list has ${#entries[@]} entries: --array=1-${#entries[@]}"
    ENTRY=${entries[SLURM_ARRAY_TASK_ID - 1]}
    NAME=$(basename "$ENTRY")
    NAME=${NAME%.*}
    local others
    others=$(printf '%s\n' "${entries[@]}" | while read -r e; do e=$(basename "$e"); echo "${e%.*}"; done | grep -cxF -- "$NAME")
    (( others == 1 )) || fail "$list has $others entries named $NAME: their outputs would collide"
    [[ -f $ENTRY ]] || fail "$ENTRY (line of $list) does not exist"
}
