#!/usr/bin/env bash
# start-slurm.sh: bring up mtarl's single-node SLURM 22.05 test cluster on localhost (Debian 12, as root).
#
#   bash infra/start-slurm.sh     # then: snakemake --profile workflow/profiles/slurm ... (partition "debug")
#   bash infra/stop-slurm.sh      # stops every daemon again
#
# Starts, by hand (the machines have no systemd): munged, MariaDB + slurmdbd (accounting, so `sacct` works,
# which is what the Snakemake SLURM executor polls), slurmctld and slurmd with two fake GPUs (gres.conf).
# Adapted from the reference test infrastructure (infra.md section 2), full-accounting mode only.
#
# Idempotent: packages are installed only when missing; a daemon already running (pid file + process name)
# is left alone; the database, account `testacct` and root's association are created only if absent. If the
# generated slurm.conf/gres.conf differ from those in /etc/slurm, slurmctld and slurmd are restarted, since
# node definitions (Gres included) are only read at start. A second run with nothing changed takes < 1 s.
# Nothing machine-specific is hard-coded: CPUs, topology and memory come from `slurmd -C`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=infra/slurm-lib.sh
source "$HERE/slurm-lib.sh"

# --- packages (apt-get update only if the install fails, e.g. stale or missing package lists) ---
export DEBIAN_FRONTEND=noninteractive
pkgs=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server mariadb-client)
if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends "${pkgs[@]}" \
    || { apt-get update && apt-get install -y --no-install-recommends "${pkgs[@]}"; }
fi

# --- configuration: slurm.conf with this machine's hardware on the node line ---
install -d -o slurm -g slurm /run/slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d /var/lib/slurm/slurmd
hw=$(slurmd -C | sed -n 1p \
     | grep -oE '(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=[0-9]+' \
     | tr '\n' ' ' || true)
new=$(mktemp)
trap 'rm -f "$new"' EXIT
if [[ -n $hw ]]; then
  sed -E "s/^(NodeName=localhost NodeAddr=127\.0\.0\.1) .* (State=UNKNOWN .*)$/\1 ${hw}\2/" "$HERE/slurm.conf" >"$new"
else
  cp "$HERE/slurm.conf" "$new"
fi
grep -q '^NodeName=localhost .*RealMemory=' "$new" || { echo "bad node line in $new" >&2; exit 1; }

changed=0
cmp -s "$new" /etc/slurm/slurm.conf || changed=1
cmp -s "$HERE/gres.conf" /etc/slurm/gres.conf || changed=1
install -m 644 "$new" /etc/slurm/slurm.conf
install -m 644 "$HERE/gres.conf" /etc/slurm/gres.conf
if (( changed )); then
  stop_daemon /run/slurm/slurmd.pid slurmd
  stop_daemon /run/slurm/slurmctld.pid slurmctld
fi

# --- munge: authentication between the daemons and the client commands ---
if [[ ! -s /etc/munge/munge.key ]]; then   # normally created by the package's postinst
  mungekey --create --keyfile /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 600 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 755 /run/munge
alive /run/munge/munged.pid munged || runuser -u munge -- /usr/sbin/munged
wait_for munge bash -c 'munge -n | unmunge'

# --- accounting: MariaDB + slurmdbd ---
if ! cmp -s "$HERE/slurmdbd.conf" /etc/slurm/slurmdbd.conf; then
  install -m 600 -o slurm -g slurm "$HERE/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  stop_daemon /run/slurm/slurmdbd.pid slurmdbd
fi
install -d -o mysql -g mysql /run/mysqld
if ! mariadb-admin ping >/dev/null 2>&1; then
  # mariadbd does not daemonize: setsid detaches it so that it outlives this script
  setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
    </dev/null >>/var/log/slurm/mariadb.log 2>&1 &
fi
wait_for mariadb mariadb-admin ping
# the password is a throw-away value of this local test database (reachable on 127.0.0.1 only)
mariadb <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbpass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
alive /run/slurm/slurmdbd.pid slurmdbd || /usr/sbin/slurmdbd
wait_for slurmdbd bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'

# --- controller and node ---
alive /run/slurm/slurmctld.pid slurmctld || /usr/sbin/slurmctld
wait_for slurmctld bash -c 'scontrol ping | grep -q UP'
alive /run/slurm/slurmd.pid slurmd || /usr/sbin/slurmd -N localhost
# shellcheck disable=SC2016  # expanded by the inner bash
if ! wait_for "node localhost to be up" \
       bash -c '[[ $(sinfo -h -n localhost -o %T) =~ ^(idle|mixed|allocated)$ ]]'; then
  sinfo -R >&2
  exit 1
fi

# --- the account the tests submit with (the executor plugin validates slurm_account with sacctmgr) ---
wait_for "cluster registration in slurmdbd" \
  bash -c 'sacctmgr -n -P show cluster format=cluster | grep -qx localcluster'
sacctmgr -n -P show account testacct format=account | grep -qx testacct \
  || sacctmgr -i add account testacct Description=test Organization=test >/dev/null
sacctmgr -n -P show assoc user=root account=testacct format=user | grep -qx root \
  || sacctmgr -i add user root Account=testacct >/dev/null
sinfo
