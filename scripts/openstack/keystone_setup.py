"""Keystone REST steps of the OpenStack test bed (standard library only, Debian's python3).

  keystone_setup.py register   projects, users, roles, services and endpoints after bootstrap
  keystone_setup.py check      end to end: tokens, catalog, Glance and Swift accept the tokens

Settings come from the OPENSTACK_TESTBED_* environment that scripts/openstack-testbed exports.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

ENV = os.environ
KEYSTONE = "http://127.0.0.1:%s/v3" % ENV["OPENSTACK_TESTBED_KEYSTONE_PORT"]
GLANCE = "http://127.0.0.1:%s" % ENV["OPENSTACK_TESTBED_GLANCE_PORT"]
SWIFT = "http://127.0.0.1:%s" % ENV["OPENSTACK_TESTBED_SWIFT_PORT"]
REGION = ENV["OPENSTACK_TESTBED_REGION"]


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


def register():
    admin, _ = token("admin", ENV["OPENSTACK_TESTBED_ADMIN_PASSWORD"], "admin")
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


def endpoint(catalog, kind):
    for entry in catalog:
        if entry["type"] == kind:
            for ep in entry["endpoints"]:
                if ep["interface"] == "public" and ep["region_id"] == REGION:
                    return ep["url"]
    sys.exit("check: no public %s endpoint in region %s in the catalog" % (kind, REGION))


def check_once():
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
    return None


def check():
    # Glance and Swift fetch their own service tokens lazily on the first request; allow them
    # a few seconds before calling it a failure.
    problem = None
    for _ in range(20):
        problem = check_once()
        if problem is None:
            return
        time.sleep(0.5)
    sys.exit("check: " + problem)


if __name__ == "__main__":
    {"register": register, "check": check}[sys.argv[1]]()
