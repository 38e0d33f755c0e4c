#!/usr/bin/env bash
# Project copy for tests/workflow/test_slurm.py (opt-in: SCALEGMN_TEST_SLURM=1, root, Debian/apt).
# slurm-down.sh - stop the daemons that slurm-up.sh started, and only those
# (pids recorded in $SLURM_LOCAL_STATE_DIR, default /run/slurm-local).
# Jobs still queued/running on a controller we started are cancelled first,
# so that no slurmstepd is left behind. Packages, config and state stay.
set -uo pipefail

STATE_DIR=${SLURM_LOCAL_STATE_DIR:-/run/slurm-local}

log() { printf '[slurm-down] %s\n' "$*"; }

alive() { # alive PID NAME: live, non-zombie process whose comm starts with NAME
  local pid=$1 name=$2 comm state
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && [[ "$comm" == "$name"* ]]
}
pid_from() { [ -s "$1" ] && tr -dc '0-9' < "$1" || true; }

stop() { # stop NAME [DAEMON_PIDFILE]
  local name=$1 dpf=${2:-} pid
  local ours="$STATE_DIR/$name.pid"
  if [ ! -e "$ours" ]; then log "$name: not started by slurm-up.sh, left alone"; return 0; fi
  pid=$(pid_from "$ours")
  if alive "$pid" "$name"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 60); do alive "$pid" "$name" || break; sleep 0.25; done
    if alive "$pid" "$name"; then log "$name (pid $pid) ignored SIGTERM for 15 s, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null; fi
  else
    log "$name: recorded pid ${pid:-?} not running (stale pid file)"
  fi
  rm -f "$ours"
  # The daemons do not always remove their own pid file; a stale
  # /run/slurmctld.pid makes the slurmctld package's prerm run scancel
  # against a dead controller and fail `apt-get remove`.
  if [ -n "$dpf" ] && [ "$(pid_from "$dpf")" = "$pid" ]; then rm -f "$dpf"; fi
}

ctld_pid=$(pid_from "$STATE_DIR/slurmctld.pid")
if alive "$ctld_pid" slurmctld && command -v squeue >/dev/null; then
  jobs=$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs still in the queue: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null
    for _ in $(seq 1 40); do [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break; sleep 0.5; done
  fi
fi

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
rmdir "$STATE_DIR" 2>/dev/null || true
log "done"
