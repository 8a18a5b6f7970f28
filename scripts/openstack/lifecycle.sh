# shellcheck shell=bash
# The subcommands start, stop, status, openrc and s3env of scripts/openstack-testbed.

# Every process `start` leaves running, by the name of its PID file.
TB_DAEMONS="keystone glance memcached swift-account swift-container swift-object swift-proxy
  swift-container-updater"
TB_MARKER=.openstack-testbed

tb_all_running() {
  local n
  for n in $TB_DAEMONS; do tb_pid "$n" >/dev/null || return 1; done
}

tb_any_running() { [ -n "$(tb_group_members)" ]; }

# What the running test bed was made by: these scripts' content.
tb_scripts_hash() {
  cat "$TESTBED_SCRIPTS"/* "$TESTBED_SCRIPTS/../openstack-testbed" | sha256sum | cut -d' ' -f1
}

tb_endpoints_ok() {
  tb_http_ok "$TB_KEYSTONE/v3" && tb_http_ok "$TB_GLANCE/healthcheck" &&
    tb_http_ok "$TB_SWIFT/healthcheck"
}

# Total resident memory of our process groups, in MB.
tb_rss_mb() {
  local members
  members=$(tb_group_members | tr '\n' ' ')
  tb_proc_table | awk -v m="$members" 'BEGIN { n = split(m, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    want[$1] { s += $3 } END { printf "%d\n", s / 1024 }'
}

# The state directory is wiped on every start; refuse to wipe one that is not ours.
tb_fresh_dir() {
  if [ -d "$TB_DIR" ] && [ ! -e "$TB_DIR/$TB_MARKER" ] && [ -n "$(ls -A "$TB_DIR")" ]; then
    tb_die "$TB_DIR is not empty and was not made by this script: not wiping it" \
      "(set OPENSTACK_TESTBED_DIR to another directory)"
  fi
  rm -rf "$TB_DIR"
  mkdir -p "$TB_DIR/log" "$TB_DIR/run"
  : >"$TB_DIR/$TB_MARKER"
}

tb_show_failure() { # SERVICE, or "check" for the end-to-end check
  local f dirs="$TB_DIR/$1"
  echo "---- $1 failed: $(tail -n 5 "$TB_DIR/log/start-$1.log" 2>/dev/null)" >&2
  # The check talks to all three: show its own output and every service's logs.
  if [ "$1" = check ]; then
    tail -n 5 "$TB_DIR/log/check.log" >&2
    dirs="$TB_DIR/keystone $TB_DIR/glance $TB_DIR/swift"
  fi
  # shellcheck disable=SC2086
  for f in $(for d in $dirs; do ls "$d"/log/*.log 2>/dev/null; done); do
    [ -s "$f" ] || continue
    echo "---- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
}

tb_start() {
  tb_load_settings
  # A test bed started by other versions of these scripts may be configured differently.
  local same_scripts=0
  if [ "$(cat "$TB_DIR/scripts.sha256" 2>/dev/null)" = "$(tb_scripts_hash)" ]; then same_scripts=1; fi
  if [ $same_scripts = 1 ] && tb_all_running && tb_endpoints_ok; then
    tb_say "already running (state in $TB_DIR)"
    tb_write_openrc
    tb_write_s3env
    return 0
  fi
  if tb_any_running; then
    if [ $same_scripts = 1 ]; then
      tb_say "partly running: stopping it first"
    else
      tb_say "running, but started by other versions of the scripts: restarting it"
    fi
    tb_kill_all
  fi
  # A new start takes its settings from the environment, not from the last run.
  rm -f "$TB_DIR/testbed.env"
  tb_env_settings
  tb_load_settings
  [ -z "$(tb_missing_packages)" ] || tb_install
  local port
  for port in "$OPENSTACK_TESTBED_KEYSTONE_PORT" "$OPENSTACK_TESTBED_GLANCE_PORT" \
    "$OPENSTACK_TESTBED_SWIFT_PORT" "$OPENSTACK_TESTBED_SWIFT_ACCOUNT_PORT" \
    "$OPENSTACK_TESTBED_SWIFT_CONTAINER_PORT" "$OPENSTACK_TESTBED_SWIFT_OBJECT_PORT" \
    "$OPENSTACK_TESTBED_MEMCACHED_PORT"; do
    if tb_port_busy "$port"; then
      tb_die "port $port on 127.0.0.1 is taken by another program (another test bed? its" \
        "'scripts/openstack-testbed stop' frees it; or move ours with the" \
        "OPENSTACK_TESTBED_*_PORT variables: see docs/testbed.md)"
    fi
  done
  tb_fresh_dir
  tb_save_settings
  tb_scripts_hash >"$TB_DIR/scripts.sha256"

  local t0=$SECONDS svc failed="" pids=()
  # Glance and Swift need Keystone only when the first request comes: start all three at once.
  for svc in keystone glance swift; do
    ("tb_${svc}_start") >"$TB_DIR/log/start-$svc.log" 2>&1 &
    pids+=($!)
  done
  local i=0
  for svc in keystone glance swift; do
    wait "${pids[$i]}" || failed="$failed $svc"
    i=$((i + 1))
  done
  if [ -z "$failed" ] &&
    ! "$TB_PY" "$TESTBED_SCRIPTS/keystone_setup.py" check "$TB_EC2_FILE" \
      >"$TB_DIR/log/check.log" 2>&1; then
    failed=" check"
  fi
  if [ -n "$failed" ]; then
    for svc in $failed; do tb_show_failure "$svc"; done
    tb_kill_all
    tb_die "start failed:$failed (everything stopped again; logs in $TB_DIR)"
  fi
  tb_write_openrc
  tb_write_s3env
  tb_say "up in $((SECONDS - t0)) s, $(tb_rss_mb) MB resident: keystone $TB_KEYSTONE/v3," \
    "glance $TB_GLANCE, swift $TB_SWIFT"
  tb_say "credentials: source $TB_DIR/openrc (admin) or $TB_DIR/openrc-demo;" \
    "S3 (s3api on $TB_SWIFT): source $TB_DIR/s3env"
}

tb_stop() {
  tb_load_settings
  if [ ! -d "$TB_DIR/run" ] || [ -z "$(tb_names)" ]; then
    tb_say "not running"
    return 0
  fi
  tb_kill_all
  tb_say "stopped"
}

tb_status() {
  tb_load_settings
  if [ ! -d "$TB_DIR/run" ] || [ -z "$(tb_names)" ]; then
    tb_say "not running (state directory $TB_DIR)"
    return 3
  fi
  local n pid ok=0
  for n in $TB_DAEMONS; do
    if pid=$(tb_pid "$n"); then
      printf '  %-24s pid %-8s running, %4s MB\n' "$n" "$pid" \
        "$(tb_proc_table | awk -v g="$pid" '$2 == g { s += $3 } END { printf "%d", s / 1024 }')"
    else
      printf '  %-24s %-12s NOT RUNNING\n' "$n" ""
      ok=1
    fi
  done
  local url
  for url in "$TB_KEYSTONE/v3" "$TB_GLANCE/healthcheck" "$TB_SWIFT/healthcheck"; do
    if tb_http_ok "$url"; then
      printf '  %-37s answers\n' "$url"
    else
      printf '  %-37s NO ANSWER\n' "$url"
      ok=1
    fi
  done
  printf '  memory: %s MB resident; state: %s\n' "$(tb_rss_mb)" "$TB_DIR"
  return $ok
}

# tb_write_rc FILE USER PASSWORD PROJECT
tb_write_rc() {
  cat >"$1" <<EOF
# OpenStack test bed (scripts/openstack-testbed): user $2 in project $4.
unset OS_CLOUD OS_TOKEN OS_AUTH_TOKEN OS_USER_ID OS_PROJECT_ID OS_TENANT_NAME OS_TENANT_ID
unset OS_APPLICATION_CREDENTIAL_ID OS_APPLICATION_CREDENTIAL_NAME OS_APPLICATION_CREDENTIAL_SECRET
unset OS_CACERT OS_INSECURE OS_USER_DOMAIN_ID OS_PROJECT_DOMAIN_ID
export OS_AUTH_URL=$TB_KEYSTONE/v3
export OS_AUTH_TYPE=password
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=$2
export OS_PASSWORD=$3
export OS_PROJECT_NAME=$4
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=$OPENSTACK_TESTBED_REGION
export OS_INTERFACE=public
# The same credentials as clouds "testbed" (admin) and "testbed-demo": OS_CLOUD=testbed-demo
# selects the other user.
export OS_CLIENT_CONFIG_FILE=$TB_DIR/clouds.yaml
EOF
}

tb_cloud_yaml() { # NAME USER PASSWORD PROJECT
  cat <<EOF
  $1:
    auth_type: password
    auth:
      auth_url: $TB_KEYSTONE/v3
      username: $2
      password: $3
      project_name: $4
      user_domain_name: Default
      project_domain_name: Default
    region_name: $OPENSTACK_TESTBED_REGION
    interface: public
    identity_api_version: 3
EOF
}

tb_write_openrc() {
  mkdir -p "$TB_DIR"
  tb_write_rc "$TB_DIR/openrc" admin "$OPENSTACK_TESTBED_ADMIN_PASSWORD" admin
  tb_write_rc "$TB_DIR/openrc-demo" demo "$OPENSTACK_TESTBED_DEMO_PASSWORD" demo
  {
    echo "clouds:"
    tb_cloud_yaml testbed admin "$OPENSTACK_TESTBED_ADMIN_PASSWORD" admin
    tb_cloud_yaml testbed-demo demo "$OPENSTACK_TESTBED_DEMO_PASSWORD" demo
  } >"$TB_DIR/clouds.yaml"
}

# The S3 view of admin's project: its EC2 credential against Swift's s3api, in the variables
# that the AWS CLI, boto3 and the object_store crate read (path-style addressing).
tb_write_s3env() {
  [ -f "$TB_EC2_FILE" ] || return 0
  local TB_S3_ACCESS TB_S3_SECRET TB_S3_BUCKET
  # shellcheck disable=SC1090
  source "$TB_EC2_FILE"
  cat >"$TB_DIR/s3env" <<EOF
# OpenStack test bed (scripts/openstack-testbed): the S3 API of Swift (s3api) as user admin in
# project admin, with an EC2 credential that Keystone checks (s3token). Path-style requests
# (http://127.0.0.1:$OPENSTACK_TESTBED_SWIFT_PORT/BUCKET/KEY), signature v4, region
# $OPENSTACK_TESTBED_REGION (s3api's location). Bucket $TB_S3_BUCKET exists; more can be created.
unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_CONFIG_FILE
unset AWS_SHARED_CREDENTIALS_FILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_ACCESS_KEY_ID=$TB_S3_ACCESS
export AWS_SECRET_ACCESS_KEY=$TB_S3_SECRET
export AWS_ENDPOINT_URL=$TB_SWIFT
export AWS_ENDPOINT=$TB_SWIFT
export AWS_REGION=$OPENSTACK_TESTBED_REGION
export AWS_DEFAULT_REGION=$OPENSTACK_TESTBED_REGION
export AWS_ALLOW_HTTP=true
export AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false
export OPENSTACK_TESTBED_S3_BUCKET=$TB_S3_BUCKET
EOF
}

tb_s3env() {
  tb_load_settings
  [ -f "$TB_EC2_FILE" ] ||
    tb_die "no S3 credential in $TB_DIR: run 'scripts/openstack-testbed start'"
  tb_write_s3env
  echo "$TB_DIR/s3env"
}

tb_openrc() { # admin|demo
  tb_load_settings
  [ -d "$TB_DIR" ] || tb_die "no test bed in $TB_DIR: run 'scripts/openstack-testbed start'"
  tb_write_openrc
  case "$1" in
    admin) echo "$TB_DIR/openrc" ;;
    demo) echo "$TB_DIR/openrc-demo" ;;
    *) tb_die "openrc: unknown user '$1' (admin or demo)" ;;
  esac
}
