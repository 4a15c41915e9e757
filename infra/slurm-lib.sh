# shellcheck shell=bash
# slurm-lib.sh: shell functions shared by infra/start-slurm.sh and infra/stop-slurm.sh (sourced, not run).

# alive PIDFILE NAME: true if PIDFILE names a running process called NAME.
# A killed daemon can linger as a zombie when nothing reaps it (no init system);
# a zombie, a stale pid file or a reused pid does not count as running.
alive() {
  local pidfile=$1 name=$2 pid stat comm
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  read -r stat comm < <(ps -o stat=,comm= -p "$pid" 2>/dev/null) || return 1
  [[ $stat != Z* && $comm == "$name" ]]
}

# wait_for WHAT CMD...: poll CMD every 0.25 s for up to 30 s.
wait_for() {
  local what=$1 _
  shift
  for _ in $(seq 1 120); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "timed out waiting for $what" >&2
  return 1
}

# stop_daemon PIDFILE NAME: SIGTERM the daemon named in PIDFILE (only if it is
# NAME) and wait until it has exited; remove the pid file.
stop_daemon() {
  local pidfile=$1 name=$2 _
  if alive "$pidfile" "$name"; then
    kill "$(<"$pidfile")"
    for _ in $(seq 1 80); do
      alive "$pidfile" "$name" || break
      sleep 0.25
    done
    if alive "$pidfile" "$name"; then
      echo "$name did not stop" >&2
      return 1
    fi
    echo "stopped $name"
  fi
  rm -f "$pidfile"
}
