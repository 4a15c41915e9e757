#!/usr/bin/env bash
# stop-slurm.sh: stop what infra/start-slurm.sh started, by pid file, and wait for each daemon to exit.
#   bash infra/stop-slurm.sh
# Safe to run when nothing, or only part of the cluster, is running. Exits 1 if a daemon would not stop.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=infra/slurm-lib.sh
source "$HERE/slurm-lib.sh"
rc=0
stop_daemon /run/slurm/slurmd.pid     slurmd    || rc=1
stop_daemon /run/slurm/slurmctld.pid  slurmctld || rc=1
stop_daemon /run/slurm/slurmdbd.pid   slurmdbd  || rc=1
stop_daemon /run/mysqld/mysqld.pid    mariadbd  || rc=1
stop_daemon /run/munge/munged.pid     munged    || rc=1
exit $rc
