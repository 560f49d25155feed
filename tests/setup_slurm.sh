#!/bin/sh
# Install what the SLURM tests need (tests/slurm_cluster.py starts a private one-node cluster
# from these programs): Debian's slurmctld, slurmd, slurm-client and munge, when they are
# missing and we are root. `make test` runs this before pytest, so the tests themselves never
# install anything.
#
# Quiet and never fatal: nothing is printed when SLURM is there or gets installed; otherwise
# one line says why not, and the SLURM tests skip with that reason.
#
#     sh tests/setup_slurm.sh
set -u

PACKAGES="slurmctld slurmd slurm-client munge"
PROGRAMS="munged slurmctld slurmd sbatch squeue scontrol scancel"

missing() {
    for program in $PROGRAMS; do
        command -v "$program" >/dev/null 2>&1 || return 0
    done
    return 1
}

missing || exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "setup_slurm: SLURM is not installed and installing it needs root; the SLURM tests will skip" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_slurm: no apt-get to install $PACKAGES with; the SLURM tests will skip" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# shellcheck disable=SC2086  # PACKAGES is a list of words
apt-get install -y -q $PACKAGES >"$log" 2>&1
if missing; then
    # With stale or missing package lists the first install fails: update them, try again.
    apt-get update -q >>"$log" 2>&1
    # shellcheck disable=SC2086
    apt-get install -y -q $PACKAGES >>"$log" 2>&1
fi
if missing; then
    echo "setup_slurm: installing $PACKAGES failed; the SLURM tests will skip:" >&2
    tail -n 3 "$log" | sed 's/^/    /' >&2
fi
rm -f "$log"
exit 0
