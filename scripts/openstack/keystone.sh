# shellcheck shell=bash
# Keystone v3 under uwsgi with sqlite and fernet tokens, then the test bed's projects, users,
# roles, services and endpoints, and admin's EC2 credential for the S3 API (keystone_setup.py).
# State in $TB_DIR/keystone.

tb_keystone_start() {
  local d=$TB_DIR/keystone
  mkdir -p "$d/fernet-keys" "$d/credential-keys" "$d/log"
  # keystone-manage warns about world-readable key repositories otherwise.
  chmod 700 "$d/fernet-keys" "$d/credential-keys"
  cat >"$d/keystone.conf" <<EOF
[DEFAULT]
log_file = $d/log/keystone.log
use_stderr = false

[database]
connection = sqlite:///$d/keystone.sqlite

[token]
provider = fernet
expiration = $OPENSTACK_TESTBED_TOKEN_EXPIRATION

[fernet_tokens]
key_repository = $d/fernet-keys/

[fernet_receipts]
key_repository = $d/fernet-keys/

[credential]
key_repository = $d/credential-keys/
# Not cached: the credential manager decrypts the cached dict in place, which with the memory
# backend (no copy) is the cached object itself, so the second S3 request of a credential
# fails with KeyError 'encrypted_blob' (HTTP 500 from /v3/s3tokens).
caching = false

[cache]
# Without a cache every request takes about a second (token validation, catalog). An
# in-process memory cache is right only because uwsgi runs ONE process (see below).
enabled = true
backend = dogpile.cache.memory

[identity]
# bcrypt cost: the default makes every password check take a noticeable time. Test bed only.
password_hash_rounds = 4
EOF

  local km=(keystone-manage --config-file "$d/keystone.conf") user group
  user=$(id -un)
  group=$(id -gn)
  # The three set-up steps are independent, and each spends seconds importing Python.
  local p1 p2 p3 rc=0
  "${km[@]}" db_sync >"$d/log/db_sync.log" 2>&1 &
  p1=$!
  "${km[@]}" fernet_setup --keystone-user "$user" --keystone-group "$group" \
    >"$d/log/fernet_setup.log" 2>&1 &
  p2=$!
  "${km[@]}" credential_setup --keystone-user "$user" --keystone-group "$group" \
    >"$d/log/credential_setup.log" 2>&1 &
  p3=$!
  wait $p1 || rc=1
  wait $p2 || rc=1
  wait $p3 || rc=1
  [ $rc = 0 ] || { echo "keystone-manage db_sync/fernet_setup/credential_setup failed"; return 1; }

  # uwsgi: one process with one thread. With threads, sqlite connections cross threads and
  # fail, leaving "database is locked" errors (HTTP 500); with processes, sqlite locks and the
  # per-process cache go wrong. "Connection: close": --http-socket closes the connection after
  # every response without saying so, and pooled clients (keystonemiddleware in Glance and
  # Swift, or reqwest) then reuse a dead socket and see random failures.
  # It starts before `bootstrap` so that its slow application import overlaps with it.
  (
    cd "$d"
    export OS_KEYSTONE_CONFIG_DIR=$d OS_KEYSTONE_CONFIG_FILES=keystone.conf
    tb_spawn keystone "$d/log/uwsgi.log" \
      uwsgi --plugins python3 --http-socket "127.0.0.1:$OPENSTACK_TESTBED_KEYSTONE_PORT" \
      --wsgi-file /usr/bin/keystone-wsgi-public --master --processes 1 --threads 1 \
      --enable-threads --lazy-apps --die-on-term --buffer-size 65535 \
      --add-header "Connection: close"
  )

  "${km[@]}" bootstrap --bootstrap-password "$OPENSTACK_TESTBED_ADMIN_PASSWORD" \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id "$OPENSTACK_TESTBED_REGION" \
    --bootstrap-admin-url "$TB_KEYSTONE/v3" --bootstrap-public-url "$TB_KEYSTONE/v3" \
    --bootstrap-internal-url "$TB_KEYSTONE/v3" >"$d/log/bootstrap.log" 2>&1 ||
    { echo "keystone-manage bootstrap failed"; return 1; }

  tb_wait_http "$TB_KEYSTONE/v3" keystone || return 1
  "$TB_PY" "$TESTBED_SCRIPTS/keystone_setup.py" register "$TB_EC2_FILE"
}
