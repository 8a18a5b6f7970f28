# shellcheck shell=bash
# Glance v2 API (one eventlet process) with sqlite, a file store and Keystone auth.
# State in $TB_DIR/glance. Nothing in /etc/glance is read: only --config-file is used.

tb_glance_start() {
  local d=$TB_DIR/glance
  mkdir -p "$d/images" "$d/staging" "$d/tasks" "$d/cache" "$d/lock" "$d/log"

  # Our own paste pipeline, so that no file of /etc/glance is involved.
  cat >"$d/glance-api-paste.ini" <<'EOF'
[pipeline:glance-api-keystone]
pipeline = healthcheck versionnegotiation authtoken context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:healthcheck]
paste.filter_factory = oslo_middleware:Healthcheck.factory
backends = disable_by_file
disable_by_file_path = /nonexistent/glance-healthcheck-disable

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = true
EOF
  # An empty policy file: Glance's defaults (admin may publicize, members may not).
  : >"$d/policy.yaml"

  cat >"$d/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $OPENSTACK_TESTBED_GLANCE_PORT
# 0 = serve from the one eventlet process (the default forks a worker per CPU).
workers = 0
log_file = $d/log/glance-api.log
use_stderr = false
enabled_backends = fs:file
image_cache_dir = $d/cache
# A quota far above what any test stores, so that an upload announcing more is refused with
# 413 before any data is sent (the clients' "too large" error is tested with it).
user_storage_quota = 1TB

[database]
connection = sqlite:///$d/glance.sqlite

[paste_deploy]
flavor = keystone
config_file = $d/glance-api-paste.ini

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = $d/images/

# The import flow (stage + import) keeps staged data and task data here.
[os_glance_staging_store]
filesystem_store_datadir = $d/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $d/tasks/

# The import flow converts what it imports to raw with qemu-img (a dependency of Glance's
# package), as clouds that use sstream-mirror-glance --image-import-conversion do.
[image_import_opts]
image_import_plugins = ['image_conversion']

[image_conversion]
output_format = raw

[oslo_concurrency]
lock_path = $d/lock

[oslo_policy]
enforce_scope = false
enforce_new_defaults = false
policy_file = $d/policy.yaml

[keystone_authtoken]
www_authenticate_uri = $TB_KEYSTONE
auth_url = $TB_KEYSTONE
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = $OPENSTACK_TESTBED_SERVICE_PASSWORD
region_name = $OPENSTACK_TESTBED_REGION
EOF

  glance-manage --config-file "$d/glance-api.conf" db_sync >"$d/log/db_sync.log" 2>&1 ||
    { echo "glance-manage db_sync failed"; return 1; }
  tb_spawn glance "$d/log/stdout.log" glance-api --config-file "$d/glance-api.conf"
  tb_wait_http "$TB_GLANCE/healthcheck" glance
}
