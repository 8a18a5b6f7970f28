# shellcheck shell=bash
# Settings, installation and process bookkeeping shared by the test bed's subcommands.
# Sourced by scripts/openstack-testbed; the per-service steps are in keystone.sh, glance.sh and
# swift.sh beside this file.

TB_REPO=$(cd "$TESTBED_SCRIPTS/../.." && pwd)
TB_DIR=${OPENSTACK_TESTBED_DIR:-$TB_REPO/.work/openstack}
# Debian's python: the packaged services' modules (swift, keystone) live there, while `python3`
# on PATH may be another interpreter (pyenv) without them.
TB_PY=/usr/bin/python3

# Every setting can be overridden from the environment at `start`; `start` saves them in
# $TB_DIR/testbed.env so that `status`, `openrc` and the tests see the values it used.
tb_defaults() {
  : "${OPENSTACK_TESTBED_KEYSTONE_PORT:=5000}"
  : "${OPENSTACK_TESTBED_GLANCE_PORT:=9292}"
  : "${OPENSTACK_TESTBED_SWIFT_PORT:=8080}"
  : "${OPENSTACK_TESTBED_SWIFT_ACCOUNT_PORT:=6202}"
  : "${OPENSTACK_TESTBED_SWIFT_CONTAINER_PORT:=6201}"
  : "${OPENSTACK_TESTBED_SWIFT_OBJECT_PORT:=6200}"
  : "${OPENSTACK_TESTBED_MEMCACHED_PORT:=11211}"
  : "${OPENSTACK_TESTBED_ADMIN_PASSWORD:=adminpass}"
  : "${OPENSTACK_TESTBED_DEMO_PASSWORD:=demopass}"
  : "${OPENSTACK_TESTBED_SERVICE_PASSWORD:=servicepass}"
  : "${OPENSTACK_TESTBED_REGION:=RegionOne}"
  : "${OPENSTACK_TESTBED_TOKEN_EXPIRATION:=86400}"
}

TB_SETTINGS="KEYSTONE_PORT GLANCE_PORT SWIFT_PORT SWIFT_ACCOUNT_PORT SWIFT_CONTAINER_PORT
  SWIFT_OBJECT_PORT MEMCACHED_PORT ADMIN_PASSWORD DEMO_PASSWORD SERVICE_PASSWORD REGION
  TOKEN_EXPIRATION"

# The environment's own settings, before any saved file is read (a new start uses these).
TB_ENV_SNAPSHOT=$(for s in $TB_SETTINGS; do
  v=OPENSTACK_TESTBED_$s
  if [ -n "${!v+set}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
done)

tb_env_settings() {
  local s
  for s in $TB_SETTINGS; do unset "OPENSTACK_TESTBED_$s"; done
  eval "$TB_ENV_SNAPSHOT"
}

tb_save_settings() {
  local s
  for s in $TB_SETTINGS; do
    printf 'OPENSTACK_TESTBED_%s=%q\n' "$s" "$(eval echo "\"\${OPENSTACK_TESTBED_$s}\"")"
  done >"$TB_DIR/testbed.env"
}

# Settings of the running test bed when there is one, else the environment's and the defaults.
tb_load_settings() {
  # shellcheck disable=SC1091
  if [ -f "$TB_DIR/testbed.env" ]; then source "$TB_DIR/testbed.env"; fi
  tb_defaults
  local s
  for s in $TB_SETTINGS; do export "OPENSTACK_TESTBED_$s"; done
  TB_KEYSTONE=http://127.0.0.1:$OPENSTACK_TESTBED_KEYSTONE_PORT
  TB_GLANCE=http://127.0.0.1:$OPENSTACK_TESTBED_GLANCE_PORT
  TB_SWIFT=http://127.0.0.1:$OPENSTACK_TESTBED_SWIFT_PORT
  # admin's EC2 credential (access key, secret) and the S3 test bucket, as shell assignments.
  TB_EC2_FILE=$TB_DIR/keystone/ec2-admin.env
}

tb_say() { printf 'openstack-testbed: %s\n' "$*"; }
tb_die() { printf 'openstack-testbed: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- install
TB_PACKAGES="glance-api keystone uwsgi-core uwsgi-plugin-python3 swift-proxy swift-account
  swift-container swift-object memcached python3-keystonemiddleware curl"

tb_missing_packages() {
  local p missing=""
  for p in $TB_PACKAGES; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
      missing="$missing $p"
    fi
  done
  echo "$missing"
}

tb_install() {
  local missing
  missing=$(tb_missing_packages)
  if [ -z "$missing" ]; then
    tb_say "packages already installed"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || tb_die "missing packages:$missing (run as root or install sudo)"
    sudo="sudo"
  fi
  tb_say "installing:$missing"
  # The packages' postinst would start glance-api, keystone, swift and memcached on 0.0.0.0
  # with /etc configs: a policy-rc.d answering 101 ("action forbidden") stops that. Create it
  # only if the machine has none, and remove only the one created here.
  local own_policy=0 log
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  mkdir -p "$TB_REPO/.work"
  log=$TB_REPO/.work/openstack-install.log
  local t0=$SECONDS rc=0 try
  # An earlier install that was interrupted leaves dpkg refusing to go on until this is run.
  $sudo env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >"$log" 2>&1 || true
  $sudo apt-get update -q >>"$log" 2>&1 || rc=$?
  if [ $rc = 0 ]; then
    # One retry: a dpkg run can fail on a transient error (a lost temporary file was seen here).
    for try in 1 2; do
      rc=0
      # shellcheck disable=SC2086
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        $missing >>"$log" 2>&1 || rc=$?
      [ $rc = 0 ] && break
    done
  fi
  if [ $own_policy = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  if [ $rc != 0 ]; then
    tail -n 30 "$log" >&2
    tb_die "apt-get failed (full log: $log)"
  fi
  tb_say "installed in $((SECONDS - t0)) s (log: $log)"
}

# ---------------------------------------------------------------------------- processes
# Each daemon is started with setsid, so its PID is also its process-group id: stopping the
# group also stops its children (uwsgi's worker, swift's updater children). $TB_DIR/run/NAME.pid
# holds "PID STARTTIME"; the start time (field 22 of /proc/PID/stat) tells our process from a
# later one that got the same PID.

tb_starttime() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The command name (field 2) may hold spaces; fields after the closing ')' are fixed.
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# tb_spawn NAME LOGFILE COMMAND... : start COMMAND as a new session, record its PID.
tb_spawn() {
  local name=$1 log=$2
  shift 2
  mkdir -p "$TB_DIR/run"
  setsid "$@" </dev/null >>"$log" 2>&1 &
  local pid=$!
  echo "$pid $(tb_starttime "$pid" || echo -)" >"$TB_DIR/run/$name.pid"
}

# tb_pid NAME: the recorded PID if that process is still the one we started and alive (a
# zombie, dead but not yet reaped, does not count).
tb_pid() {
  local f=$TB_DIR/run/$1.pid pid start now stat
  [ -f "$f" ] || return 1
  read -r pid start <"$f" || return 1
  now=$(tb_starttime "$pid") || return 1
  [ "$now" = "$start" ] || return 1
  { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  echo "$pid"
}

tb_names() {
  local f
  for f in "$TB_DIR"/run/*.pid; do
    [ -e "$f" ] || continue
    f=${f##*/}
    echo "${f%.pid}"
  done
}

# "PID PGID RSS_KB" of every process, from /proc (procps may not be installed).
tb_proc_table() {
  local f line pid page_kb
  page_kb=$(($(getconf PAGESIZE) / 1024))
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    pid=${f#/proc/}
    pid=${pid%/stat}
    # Fields after the command name: state ppid pgrp ... rss is the 22nd of them.
    # shellcheck disable=SC2086
    set -- ${line##*) }
    echo "$pid $3 $((${22} * page_kb))"
  done
}

# PIDs of every live process in the groups we started (the leaders may be gone already).
tb_group_members() {
  local f pid start pgids=""
  for f in "$TB_DIR"/run/*.pid; do
    [ -e "$f" ] || continue
    read -r pid start <"$f" || continue
    # A live process with this PID but another start time is someone else's: not ours.
    if [ -d "/proc/$pid" ] && [ "$(tb_starttime "$pid")" != "$start" ]; then continue; fi
    pgids="$pgids $pid"
  done
  [ -n "$pgids" ] || return 0
  tb_proc_table | awk -v g="$pgids" 'BEGIN { n = split(g, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    want[$2] { print $1 }'
}

tb_kill_all() {
  local members i
  members=$(tb_group_members)
  if [ -n "$members" ]; then
    # shellcheck disable=SC2086
    kill -TERM $members 2>/dev/null || true
    for i in $(seq 1 40); do
      members=$(tb_group_members)
      [ -z "$members" ] && break
      sleep 0.25
    done
    # shellcheck disable=SC2086
    if [ -n "$members" ]; then kill -KILL $members 2>/dev/null || true; fi
  fi
  rm -f "$TB_DIR"/run/*.pid
}

tb_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tb_http_ok() { curl -fsS -o /dev/null --max-time 5 "$1" 2>/dev/null; }

# tb_wait_http URL NAME...: wait up to 120 s for URL to answer 2xx while the named daemons live.
tb_wait_http() {
  local url=$1 i n
  shift
  for i in $(seq 1 480); do
    tb_http_ok "$url" && return 0
    for n in "$@"; do
      tb_pid "$n" >/dev/null || { echo "$n exited while waiting for $url"; return 1; }
    done
    sleep 0.25
  done
  echo "no answer from $url after 120 s"
  return 1
}
