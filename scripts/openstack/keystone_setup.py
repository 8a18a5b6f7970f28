"""Keystone REST steps of the OpenStack test bed (standard library only, Debian's python3).

  keystone_setup.py register EC2FILE  projects, users, roles, services and endpoints after
                                      bootstrap; an EC2 credential of admin (project admin)
                                      for the S3 API, written to EC2FILE as shell assignments
  keystone_setup.py check EC2FILE     end to end: tokens, catalog, Glance and Swift accept the
                                      tokens; the S3 API accepts that credential (the test
                                      bucket is created, an object put, read and deleted)

Settings come from the OPENSTACK_TESTBED_* environment that scripts/openstack-testbed exports.
"""

import datetime
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

ENV = os.environ
KEYSTONE = "http://127.0.0.1:%s/v3" % ENV["OPENSTACK_TESTBED_KEYSTONE_PORT"]
GLANCE = "http://127.0.0.1:%s" % ENV["OPENSTACK_TESTBED_GLANCE_PORT"]
SWIFT = "http://127.0.0.1:%s" % ENV["OPENSTACK_TESTBED_SWIFT_PORT"]
REGION = ENV["OPENSTACK_TESTBED_REGION"]
# The bucket the S3 tests use (a container of project admin); `start` creates it.
S3_BUCKET = "simplestreams-testbed"


def call(method, url, body=None, token=None):
    """One request; returns (status, headers, parsed JSON or None). HTTP errors are returned."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data)
    req.add_header("Content-Type", "application/json")
    # Keystone's uwsgi closes every connection; say so rather than rely on reuse.
    req.add_header("Connection", "close")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, resp.headers, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as err:
        return err.code, err.headers, None


def must(method, path, body=None, token=None, ok=(200, 201, 204)):
    status, headers, doc = call(method, KEYSTONE + path, body, token)
    if status not in ok:
        sys.exit("keystone: %s %s answered %s" % (method, path, status))
    return headers, doc


def token(user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    headers, doc = must("POST", "/auth/tokens", body)
    return headers["X-Subject-Token"], doc["token"]


def register(ec2_file):
    admin, admin_token = token("admin", ENV["OPENSTACK_TESTBED_ADMIN_PASSWORD"], "admin")
    roles = {r["name"]: r["id"] for r in must("GET", "/roles", token=admin)[1]["roles"]}
    for name in ("member", "reader", "ResellerAdmin"):
        if name not in roles:
            roles[name] = must("POST", "/roles", {"role": {"name": name}}, admin)[1]["role"]["id"]

    def project(name):
        body = {"project": {"name": name, "domain_id": "default"}}
        return must("POST", "/projects", body, admin)[1]["project"]["id"]

    def user(name, password, project_id, role):
        body = {"user": {"name": name, "password": password, "domain_id": "default",
                         "default_project_id": project_id}}
        uid = must("POST", "/users", body, admin)[1]["user"]["id"]
        must("PUT", "/projects/%s/users/%s/roles/%s" % (project_id, uid, roles[role]),
             token=admin)

    service = project("service")
    demo = project("demo")
    # Glance's and Swift's keystonemiddleware validate user tokens as these service users.
    for name in ("glance", "swift"):
        user(name, ENV["OPENSTACK_TESTBED_SERVICE_PASSWORD"], service, "admin")
    user("demo", ENV["OPENSTACK_TESTBED_DEMO_PASSWORD"], demo, "member")

    def catalog(name, kind, url):
        body = {"service": {"name": name, "type": kind, "enabled": True}}
        sid = must("POST", "/services", body, admin)[1]["service"]["id"]
        for interface in ("public", "internal", "admin"):
            must("POST", "/endpoints", {"endpoint": {
                "service_id": sid, "interface": interface, "url": url,
                "region_id": REGION, "enabled": True}}, admin)

    catalog("glance", "image", GLANCE)
    catalog("swift", "object-store", SWIFT + "/v1/AUTH_%(project_id)s")

    # S3 access key and secret of admin in project admin: s3token has Keystone check S3
    # signatures against it, and the requests land in that project's Swift account.
    cred = must("POST", "/users/%s/credentials/OS-EC2" % admin_token["user"]["id"],
                {"tenant_id": admin_token["project"]["id"]}, admin)[1]["credential"]
    for key in ("access", "secret"):
        if not re.fullmatch(r"[0-9A-Za-z]+", cred[key]):
            sys.exit("keystone: unexpected characters in the EC2 %s" % key)
    with open(ec2_file + ".tmp", "w") as out:
        out.write("TB_S3_ACCESS=%s\nTB_S3_SECRET=%s\nTB_S3_BUCKET=%s\n"
                  % (cred["access"], cred["secret"], S3_BUCKET))
    os.replace(ec2_file + ".tmp", ec2_file)


def endpoint(catalog, kind):
    for entry in catalog:
        if entry["type"] == kind:
            for ep in entry["endpoints"]:
                if ep["interface"] == "public" and ep["region_id"] == REGION:
                    return ep["url"]
    sys.exit("check: no public %s endpoint in region %s in the catalog" % (kind, REGION))


def read_ec2(ec2_file):
    with open(ec2_file) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def s3(method, path, ec2, body=b""):
    """One path-style S3 request to Swift's s3api, signed with AWS Signature v4 (the default of
    every current S3 client); returns (status, body). `path` is /BUCKET[/KEY], URL-safe."""
    host = "127.0.0.1:%s" % ENV["OPENSTACK_TESTBED_SWIFT_PORT"]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join([method, path, "", "host:%s" % host,
                           "x-amz-content-sha256:%s" % payload, "x-amz-date:%s" % stamp, "",
                           signed, payload])
    scope = "%s/%s/s3/aws4_request" % (stamp[:8], REGION)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + ec2["TB_S3_SECRET"]).encode()
    for part in (stamp[:8], REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request("http://" + host + path, method=method, data=body or None)
    req.add_header("x-amz-date", stamp)
    req.add_header("x-amz-content-sha256", payload)
    req.add_header("Authorization", "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                   "Signature=%s" % (ec2["TB_S3_ACCESS"], scope, signed, signature))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def check_s3(ec2_file):
    """None when the S3 API works with the EC2 credential (and the test bucket exists)."""
    ec2 = read_ec2(ec2_file)
    bucket = "/" + ec2["TB_S3_BUCKET"]
    status, body = s3("PUT", bucket, ec2)
    # 409 BucketAlreadyOwnedByYou: a retry of this check after the bucket was made.
    if status not in (200, 409):
        return "s3api answered %s to creating bucket %s: %r" % (status, bucket, body[:3000])
    obj = bucket + "/testbed-check"
    for method, want, data in (("PUT", 200, b"s3 ok"), ("GET", 200, None),
                               ("DELETE", 204, None)):
        status, body = s3(method, obj, ec2, data or b"")
        if status != want or (method == "GET" and body != b"s3 ok"):
            return "s3api answered %s %r to %s %s" % (status, body[:300], method, obj)
    status, _ = s3("GET", bucket, ec2.copy() | {"TB_S3_SECRET": "wrong"})
    if status != 403:
        return "s3api answered %s to a bad signature (want 403)" % status
    return None


def check_once(ec2_file):
    """None when the cloud works end to end, else what does not."""
    for user, password, project in (
            ("admin", ENV["OPENSTACK_TESTBED_ADMIN_PASSWORD"], "admin"),
            ("demo", ENV["OPENSTACK_TESTBED_DEMO_PASSWORD"], "demo")):
        tok, body = token(user, password, project)
        image = endpoint(body["catalog"], "image")
        store = endpoint(body["catalog"], "object-store")
        status = call("GET", image + "/v2/images?limit=1", token=tok)[0]
        if status != 200:
            return "glance answered %s to %s's token" % (status, user)
        status = call("GET", store + "?format=json", token=tok)[0]
        if status not in (200, 204):
            return "swift answered %s to %s's token" % (status, user)
    status = call("GET", GLANCE + "/v2/images")[0]
    if status != 401:
        return "glance answered %s without a token (want 401)" % status
    return check_s3(ec2_file)


def check(ec2_file):
    # Glance and Swift fetch their own service tokens lazily on the first request; allow them
    # a few seconds before calling it a failure.
    problem = None
    for _ in range(20):
        problem = check_once(ec2_file)
        if problem is None:
            return
        time.sleep(0.5)
    sys.exit("check: " + problem)


if __name__ == "__main__":
    {"register": register, "check": check}[sys.argv[1]](sys.argv[2])
