# shellcheck shell=bash
# Swift all-in-one: memcached, account/container/object servers on plain directories (one
# replica, one device), container-updater, and a proxy with Keystone auth (keystoneauth) and
# the S3 API (s3api, its signatures checked by Keystone through s3token).
# State in $TB_DIR/swift, which is also swift_dir: /etc/swift is never read.

tb_swift_server_conf() { # PORT
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $1
workers = 0
# The default "swift" user would drop privileges and lose access to the state directory.
user = $(id -un)
swift_dir = $TB_DIR/swift
devices = $TB_DIR/swift/node
mount_check = false
disable_fallocate = true
log_level = INFO
EOF
}

tb_swift_start() {
  local d=$TB_DIR/swift
  mkdir -p "$d/node/d1" "$d/log"

  # The object server keeps metadata in user.* extended attributes.
  "$TB_PY" -c 'import os, sys; os.setxattr(sys.argv[1], "user.testbed", b"1")' "$d/node/d1" ||
    { echo "the filesystem of $d has no user xattrs: Swift's object server cannot work there" \
      "(set OPENSTACK_TESTBED_DIR to a directory on ext4 or xfs)"; return 1; }

  cat >"$d/swift.conf" <<'EOF'
[swift-hash]
swift_hash_path_suffix = simplestreams-testbed-suffix
swift_hash_path_prefix = simplestreams-testbed-prefix

[storage-policy:0]
name = Policy-0
default = yes
EOF
  (cd "$d" && "$TB_PY" "$TESTBED_SCRIPTS/swift_rings.py" "$OPENSTACK_TESTBED_SWIFT_ACCOUNT_PORT" \
    "$OPENSTACK_TESTBED_SWIFT_CONTAINER_PORT" "$OPENSTACK_TESTBED_SWIFT_OBJECT_PORT") \
    >"$d/log/rings.log" 2>&1 || { echo "building the swift rings failed"; return 1; }

  local kind
  for kind in account container object; do
    {
      case $kind in
        account) tb_swift_server_conf "$OPENSTACK_TESTBED_SWIFT_ACCOUNT_PORT" ;;
        container) tb_swift_server_conf "$OPENSTACK_TESTBED_SWIFT_CONTAINER_PORT" ;;
        object) tb_swift_server_conf "$OPENSTACK_TESTBED_SWIFT_OBJECT_PORT" ;;
      esac
      cat <<EOF

[pipeline:main]
pipeline = healthcheck $kind-server

[app:$kind-server]
use = egg:swift#$kind

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
      if [ $kind = container ]; then
        # The updater pushes object counts and bytes up to the account (no test reads them).
        # Every second, it swept the thousands of containers the tests leave with four
        # workers without a pause, taking most of both cores from the tests and benchmarks.
        printf '\n[container-updater]\ninterval = 60\nconcurrency = 1\n'
      fi
    } >"$d/$kind-server.conf"
  done

  cat >"$d/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $OPENSTACK_TESTBED_SWIFT_PORT
workers = 0
user = $(id -un)
swift_dir = $d
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl authtoken s3api s3token keystoneauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $TB_KEYSTONE
auth_url = $TB_KEYSTONE
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = swift
password = $OPENSTACK_TESTBED_SERVICE_PASSWORD
region_name = $OPENSTACK_TESTBED_REGION
# keystoneauth decides (tempurl and anonymous container reads need that).
delay_auth_decision = true

# The S3 API on the same port, path-style only (no storage_domain): http://HOST:PORT/BUCKET/KEY,
# a bucket being a container of the project the EC2 credential belongs to. Multipart uploads
# are stored as Static Large Objects (slo, after it in the pipeline). Order, as s3api's docs
# give it: authtoken s3api s3token keystoneauth. authtoken after s3token would strip the
# identity s3token sets (it strips every identity header of a request without a token);
# before s3api it lets S3 requests through unauthenticated (delay_auth_decision) for s3token.
[filter:s3api]
use = egg:swift#s3api
location = $OPENSTACK_TESTBED_REGION
# At most 100 keys a listing page (AWS: 1000), so that clients' paging is exercised cheaply.
max_bucket_listing = 100

# s3api parses the signature; s3token sends the string to sign and the signature to Keystone
# (POST /v3/s3tokens), which finds the EC2 credential by access key, checks the signature with
# its secret and answers with the roles of the credential's user in its project. Keystone lets
# only admins and services call s3tokens: s3token logs in as the swift user. The secret is then
# cached in memcached for 10 minutes (fetching it needs that login too) and s3api checks later
# signatures itself, sparing Keystone's one process a request per S3 request.
[filter:s3token]
use = egg:swift#s3token
auth_uri = $TB_KEYSTONE/v3
reseller_prefix = AUTH_
delay_auth_decision = false
secret_cache_duration = 600
auth_type = password
auth_url = $TB_KEYSTONE
project_domain_id = default
user_domain_id = default
project_name = service
username = swift
password = $OPENSTACK_TESTBED_SERVICE_PASSWORD
region_name = $OPENSTACK_TESTBED_REGION

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = AUTH_
operator_roles = admin, member
reseller_admin_role = ResellerAdmin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$OPENSTACK_TESTBED_MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
[filter:symlink]
use = egg:swift#symlink
EOF

  # memcached refuses to run as root without -u. -U 0: no UDP.
  tb_spawn memcached "$d/log/memcached.log" memcached -l 127.0.0.1 \
    -p "$OPENSTACK_TESTBED_MEMCACHED_PORT" -U 0 -m 64 -u "$(id -un)"
  # -v: log to stdout too (Swift otherwise logs only to syslog's /dev/log).
  for kind in account container object proxy; do
    tb_spawn "swift-$kind" "$d/log/$kind.log" "swift-$kind-server" "$d/$kind-server.conf" -v
  done
  tb_spawn swift-container-updater "$d/log/container-updater.log" \
    swift-container-updater "$d/container-server.conf" -v

  local port names="memcached swift-account swift-container swift-object swift-proxy"
  for port in "$OPENSTACK_TESTBED_SWIFT_ACCOUNT_PORT" "$OPENSTACK_TESTBED_SWIFT_CONTAINER_PORT" \
    "$OPENSTACK_TESTBED_SWIFT_OBJECT_PORT" "$OPENSTACK_TESTBED_SWIFT_PORT"; do
    # shellcheck disable=SC2086
    tb_wait_http "http://127.0.0.1:$port/healthcheck" $names || return 1
  done
}
