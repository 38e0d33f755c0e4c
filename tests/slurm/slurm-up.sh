#!/usr/bin/env bash
# Project copy for tests/workflow/test_slurm.py (opt-in: SCALEGMN_TEST_SLURM=1, root, Debian/apt).
# slurm-up.sh - install and start a single-node SLURM cluster on loopback,
# without systemd (e.g. inside a CI script run as root on Debian 12).
#
# Idempotent: re-running it keeps running daemons, rewrites the config only
# when it changed (and then restarts the daemons this script started).
# Only the daemons this script starts are recorded (pid files under
# $SLURM_LOCAL_STATE_DIR); slurm-down.sh stops exactly those.
#
# Environment knobs (all optional):
#   SLURM_FAKE_GPUS=1        number of fake "gpu" GRES on the node (0 = none)
#   SLURM_PARTITION=debug    name of the (default) partition
#   SLURM_SMOKE_TEST=1       run `srun hostname` (+ a --gres=gpu:1 srun) at the end
#   SLURM_FORCE_CONF=0       1 = overwrite an /etc/slurm/slurm.conf not written by this script
#   SLURM_LOCAL_STATE_DIR=/run/slurm-local   where our pid files live
#
# Tested with Debian 12 packages: slurm-wlm 22.05.8, munge 0.5.15.
set -euo pipefail

FAKE_GPUS=${SLURM_FAKE_GPUS:-1}
PARTITION=${SLURM_PARTITION:-debug}
SMOKE=${SLURM_SMOKE_TEST:-1}
FORCE_CONF=${SLURM_FORCE_CONF:-0}
STATE_DIR=${SLURM_LOCAL_STATE_DIR:-/run/slurm-local}
CONF_DIR=/etc/slurm
MARK="# managed-by: slurm-up.sh (do not edit; regenerated on every run)"
FAKE_GPU_DIR=/var/lib/slurm/fake-gpu
T0=$(date +%s)

log() { printf '[slurm-up %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf '[slurm-up] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# --- functions --------------------------------------------------------------
# alive PID NAME: true when PID is a live (non-zombie) process whose comm starts with NAME
alive() {
  local pid=$1 name=$2 comm state
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && [[ "$comm" == "$name"* ]]
}
# pid_from FILE: print pid in FILE (empty if none)
pid_from() { [ -s "$1" ] && tr -dc '0-9' < "$1" || true; }

wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local n=$1 what=$2; shift 2
  local i
  for ((i = 0; i < n * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "timed out after ${n}s waiting for: $what"
}

stop_ours() { # stop_ours NAME : stop a daemon we started (pid in STATE_DIR)
  local name=$1 pid
  pid=$(pid_from "$STATE_DIR/$name.pid")
  if alive "$pid" "$name"; then
    log "stopping $name (pid $pid) to apply new config"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do alive "$pid" "$name" || break; sleep 0.25; done
    alive "$pid" "$name" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE_DIR/$name.pid"
}

# --- 1. packages ------------------------------------------------------------
PKGS="slurmctld slurmd slurm-client munge"
missing=0
for b in slurmctld slurmd sbatch srun squeue sinfo scontrol munged munge unmunge; do
  command -v "$b" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
  log "installing $PKGS (no recommends)"
  # Keep the package scripts from starting daemons themselves (no systemd here);
  # a policy-rc.d that already exists is left alone.
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  trap '[ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  APT_LOG="${TMPDIR:-/tmp}/slurm-up-apt.log"
  if ! apt-get install -y -q --no-install-recommends $PKGS >"$APT_LOG" 2>&1; then
    log "apt-get install failed; running apt-get update and retrying"
    apt-get update -q >>"$APT_LOG" 2>&1 || true
    apt-get install -y -q --no-install-recommends $PKGS >>"$APT_LOG" 2>&1 \
      || { tail -20 "$APT_LOG" >&2; die "apt-get install $PKGS failed (log: $APT_LOG)"; }
  fi
  if [ "$added_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  trap - EXIT
  log "installed: $(dpkg-query -W -f='${Package}=${Version} ' slurmctld munge)"
else
  log "packages already installed"
fi
id slurm >/dev/null 2>&1 || die "user 'slurm' missing (slurm packages broken?)"
id munge >/dev/null 2>&1 || die "user 'munge' missing (munge package broken?)"

install -d -m 755 "$STATE_DIR"

# --- 2. munge -----------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  log "creating munge key"
  install -d -o munge -g munge -m 700 /etc/munge
  mungekey --create --keyfile=/etc/munge/munge.key --force
fi
chown munge:munge /etc/munge/munge.key
chmod 600 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/log/munge /var/lib/munge

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
  log "munged already running and working (pid $(pid_from /run/munge/munged.pid))"
else
  old=$(pid_from /run/munge/munged.pid)
  if alive "$old" munged; then die "munged (pid $old) runs but does not answer; stop it first"; fi
  log "starting munged"
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 "munged to answer" munge_ok
  pid=$(pid_from /run/munge/munged.pid)
  alive "$pid" munged || die "munged did not write a valid pid file"
  echo "$pid" > "$STATE_DIR/munged.pid"
  log "munged up (pid $pid)"
fi

# --- 3. configuration ------------------------------------------------------------
NODE=$(hostname -s)
[ -n "$NODE" ] || die "empty hostname"
# real topology and memory as slurmd sees them, e.g.
# NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
HW=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')
echo "$HW" | grep -q 'CPUs=' || die "could not read hardware from 'slurmd -C': $HW"

GRES_NODE="" ; GRES_TYPES=""; GRES_CONF="AutoDetect=off"
if [ "$FAKE_GPUS" -gt 0 ] 2>/dev/null; then
  # Fake GPUs: character devices with the major/minor of /dev/null (1,3).
  # Slurm only stat()s them (task/none, no cgroup device constraint), sets
  # CUDA_VISIBLE_DEVICES and counts them. Regular files are rejected by slurmd
  # ("not a valid character or block device") and a File-less Count=N makes
  # the node INVAL ("gres/gpu count reported lower than configured (0 < N)").
  install -d -m 755 "$FAKE_GPU_DIR"
  files=""
  mknod_ok=1
  for ((i = 0; i < FAKE_GPUS; i++)); do
    f="$FAKE_GPU_DIR/gpu$i"
    if [ ! -c "$f" ]; then rm -f "$f"; mknod -m 666 "$f" c 1 3 2>/dev/null || { mknod_ok=0; break; }; fi
  done
  if [ "$mknod_ok" = 1 ]; then
    if [ "$FAKE_GPUS" -eq 1 ]; then files="$FAKE_GPU_DIR/gpu0"; else files="$FAKE_GPU_DIR/gpu[0-$((FAKE_GPUS - 1))]"; fi
  elif [ "$FAKE_GPUS" -eq 1 ]; then
    files=/dev/null
  else
    die "mknod not permitted; only SLURM_FAKE_GPUS=1 (File=/dev/null) works here"
  fi
  GRES_TYPES="GresTypes=gpu"
  GRES_NODE=" Gres=gpu:$FAKE_GPUS"
  GRES_CONF+=$'\n'"NodeName=$NODE Name=gpu File=$files"
fi

NEW_CONF=$(cat <<EOF
$MARK
ClusterName=localci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups: linuxproc tracking, no task affinity/containment
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/lib/slurm/slurmd
StateSaveLocation=/var/lib/slurm/slurmctld
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# squeue-based status checks (snakemake slurm plugin) need finished jobs to
# stay visible a while: keep them 10 min (default 300 s)
MinJobAge=600
# no accounting at all (no slurmdbd): sacct/sacctmgr do not work
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SlurmctldDebug=info
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdDebug=info
SlurmdLogFile=/var/log/slurm/slurmd.log
$GRES_TYPES
NodeName=$NODE NodeAddr=127.0.0.1 $HW$GRES_NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
NEW_GRES="$MARK"$'\n'"$GRES_CONF"

install -d -m 755 "$CONF_DIR"
if [ -e "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf" && [ "$FORCE_CONF" != 1 ]; then
  die "$CONF_DIR/slurm.conf exists and was not written by this script (set SLURM_FORCE_CONF=1 to overwrite)"
fi
CONF_CHANGED=0
if [ "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" != "$NEW_CONF" ]; then
  printf '%s\n' "$NEW_CONF" > "$CONF_DIR/slurm.conf"; CONF_CHANGED=1
fi
if [ "$(cat "$CONF_DIR/gres.conf" 2>/dev/null)" != "$NEW_GRES" ]; then
  printf '%s\n' "$NEW_GRES" > "$CONF_DIR/gres.conf"; CONF_CHANGED=1
fi
chmod 644 "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"
[ "$CONF_CHANGED" = 1 ] && log "wrote $CONF_DIR/slurm.conf and gres.conf (node $NODE: $HW$GRES_NODE)" \
                        || log "config unchanged"

install -d -o slurm -g slurm -m 755 /var/lib/slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d -m 755 /var/lib/slurm/slurmd

# --- 4. daemons ----------------------------------------------------------------
ctld_pid=$(pid_from /run/slurmctld.pid)
slurmd_pid=$(pid_from /run/slurmd.pid)
if [ "$CONF_CHANGED" = 1 ]; then
  # node/GRES changes need a restart; only restart what we started
  for d in slurmd slurmctld; do
    p=$(pid_from "/run/$d.pid")
    if alive "$p" "$d"; then
      if [ "$(pid_from "$STATE_DIR/$d.pid")" = "$p" ]; then
        stop_ours "$d"
      else
        log "WARNING: $d (pid $p) was not started by this script; running 'scontrol reconfigure' only"
        scontrol reconfigure || true
      fi
    fi
  done
fi

start_daemon() { # start_daemon NAME
  local d=$1 p
  p=$(pid_from "/run/$d.pid")
  if alive "$p" "$d"; then log "$d already running (pid $p)"; return 0; fi
  rm -f "/run/$d.pid"
  log "starting $d"
  "/usr/sbin/$d" || die "$d failed to start; see /var/log/slurm/$d.log"
  wait_for 15 "$d pid file" test -s "/run/$d.pid"
  p=$(pid_from "/run/$d.pid")
  sleep 0.5
  alive "$p" "$d" || { tail -20 "/var/log/slurm/$d.log" >&2; die "$d exited right after start"; }
  echo "$p" > "$STATE_DIR/$d.pid"
  log "$d up (pid $p)"
}

start_daemon slurmctld
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
wait_for 30 "slurmctld to answer 'scontrol ping'" ctld_up
start_daemon slurmd

# --- 5. node ready? -------------------------------------------------------------
resumed=0
for i in $(seq 1 120); do
  st=$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -1 || true)
  case "$st" in
    idle|mixed|allocated|completing) break ;;
    *drain*|*down*|*inval*|*fail*)
      if [ "$resumed" = 0 ] && [ "$i" -gt 4 ]; then
        reason=$(scontrol show node "$NODE" | sed -n 's/^ *Reason=//p')
        log "node $NODE is '$st' (reason: ${reason:-none}); trying state=resume"
        scontrol update nodename="$NODE" state=resume || true
        resumed=1
      fi ;;
  esac
  [ "$i" = 120 ] && { scontrol show node "$NODE" >&2; die "node $NODE not idle after 60 s (state '$st')"; }
  sleep 0.5
done
log "node $NODE is $st"

# --- 6. smoke test --------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
  out=$(timeout 60 srun -N1 -n1 -t 1 -p "$PARTITION" hostname) || die "smoke test 'srun hostname' failed"
  log "srun hostname -> $out"
  if [ "$FAKE_GPUS" -gt 0 ] 2>/dev/null; then
    out=$(timeout 60 srun -N1 -n1 -t 1 -p "$PARTITION" --gres=gpu:1 printenv CUDA_VISIBLE_DEVICES) \
      || die "smoke test 'srun --gres=gpu:1' failed"
    log "srun --gres=gpu:1 -> CUDA_VISIBLE_DEVICES=$out"
  fi
fi

sinfo -o '%P %a %l %D %T %N %G'
log "ready in $(( $(date +%s) - T0 ))s (stop with slurm-down.sh; our pids in $STATE_DIR)"
