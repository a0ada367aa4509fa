#!/usr/bin/env python3
"""Checks that the gateway's OpenAPI document (services/gateway/openapi.json) is true.

  openapi_check.py spec   DOC [FIXTURES_DIR]   a valid OpenAPI 3.1 document (openapi-spec-validator);
                                               EasyPost's recorded answers validate against its schemas
  openapi_check.py routes DOC ROUTES_FILE      its paths and methods equal the routes the gateway
                                               registers (`shipstream-gateway --routes`)
  openapi_check.py params DOC BASE_URL KEY      every query parameter the document gives a /db
                                               operation is one the gateway knows, and an unknown
                                               one is 400 as the document says
  openapi_check.py http   DOC BASE_URL KEY REQUESTS_FILE
                                               each request's answer has a status the document lists
                                               for that operation, a documented Content-Type, and a
                                               JSON body that validates against the documented schema

Exit 0 when everything holds; otherwise 1, after printing every discrepancy.
"""
import json
import re
import sys
import urllib.error
import urllib.request

from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Served by libs/http for every service (ss_http_start), whether or not --routes lists them.
SCAFFOLD_ROUTES = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics")}
# Prefixes whose other paths the gateway forwards to EasyPost: the document describes each as
# one path item "<prefix>/{path}" marked "x-shipstream-forwarded"; --routes need not list them.
FORWARDED_PREFIXES = ("/v2", "/beta")

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def shape(path):
    """A path with its placeholders' names dropped: /v2/shipments/{} (names are not the contract)."""
    return re.sub(r"\{[^}/]*\}", "{}", path)


def doc_operations(doc):
    ops = {}
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item:
                ops[(m.upper(), shape(path))] = (path, item[m])
    return ops


def schema_validator(doc, schema):
    # The response schema, rooted in a copy of the document's components so that its
    # "#/components/..." references resolve (unknown keywords are ignored by 2020-12).
    root = dict(schema)
    root["components"] = doc["components"]
    return Draft202012Validator(root)


def resolve(doc, obj):
    while isinstance(obj, dict) and "$ref" in obj and obj["$ref"].startswith("#/"):
        node = doc
        for part in obj["$ref"][2:].split("/"):
            node = node[part]
        obj = node
    return obj


def check_body(doc, where, op, status, ctype, body):
    """Validates one answer against the operation's documented response."""
    responses = op["responses"]
    resp = responses.get(str(status)) or responses.get(str(status)[0] + "XX") or responses.get("default")
    if resp is None:
        problem(f"{where}: status {status} is not documented (documented: {sorted(responses)})")
        return
    resp = resolve(doc, resp)
    content = resp.get("content")
    if not content:
        if body:
            problem(f"{where}: {status} is documented without a body, got {len(body)} bytes")
        return
    media = (ctype or "").split(";")[0].strip().lower()
    if media not in content:
        problem(f"{where}: {status} Content-Type {media!r} is not documented ({sorted(content)})")
        return
    if media != "application/json":
        return
    try:
        value = json.loads(body)
    except ValueError as e:
        problem(f"{where}: {status} body is not JSON: {e}")
        return
    schema = content[media].get("schema", {})
    errors = sorted(schema_validator(doc, schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    for e in errors[:5]:
        path = "/".join(str(p) for p in e.absolute_path) or "(top)"
        problem(f"{where}: {status} body at {path}: {e.message[:300]}")


def cmd_spec(doc_path, fixtures=None):
    doc = load(doc_path)
    if not str(doc.get("openapi", "")).startswith("3.1."):
        problem(f"openapi is {doc.get('openapi')!r}, not 3.1.x")
    errors = list(OpenAPIV31SpecValidator(doc).iter_errors())
    for e in errors[:20]:
        problem(f"openapi-spec-validator: {e.message[:300]}")
    if not errors:
        print(f"PASS: openapi-spec-validator: a valid OpenAPI 3.1 document, {len(doc_operations(doc))} operations")
    ids = [op.get("operationId") for _, op in doc_operations(doc).values()]
    if None in ids:
        problem("an operation has no operationId")
    if not fixtures:
        return
    # EasyPost's recorded answers (tests/fixtures/easypost/api) validate against the /v2 operations.
    recorded = [("shipment-create", "POST", "/v2/shipments"), ("shipment-buy", "POST", "/v2/shipments/{}/buy"),
                ("tracker-create", "POST", "/v2/trackers"), ("tracker-retrieve", "GET", "/v2/trackers/{}"),
                ("address-create-and-verify", "POST", "/v2/addresses/create_and_verify"),
                ("batch-create", "POST", "/v2/batches"), ("events-list", "GET", "/v2/events"),
                ("error-422", "POST", "/v2/shipments")]
    statuses = {"shipment-create": 201, "error-422": 422}
    ops = doc_operations(doc)
    before = len(problems)
    for name, method, path in recorded:
        if (method, path) not in ops:
            problem(f"{method} {path} is not in the document (recorded answer {name})")
            continue
        with open(f"{fixtures}/{name}.response.json", encoding="utf-8") as f:
            body = f.read()
        check_body(doc, f"recorded {name} ({method} {path})", ops[(method, path)][1], statuses.get(name, 200),
                   "application/json", body)
    if len(problems) == before:
        print(f"PASS: {len(recorded)} recorded EasyPost answers validate against the document's schemas")


def cmd_routes(doc_path, routes_path):
    doc = load(doc_path)
    documented = set(doc_operations(doc))
    forwarded = set()
    for prefix in FORWARDED_PREFIXES:
        item = doc["paths"].get(prefix + "/{path}", {})
        if not item.get("x-shipstream-forwarded"):
            problem(f"the document does not describe the forwarding of {prefix}/… ({prefix}/{{path}}, "
                    "x-shipstream-forwarded)")
        forwarded |= {(m.upper(), shape(prefix + "/{path}")) for m in METHODS if m in item}
    with open(routes_path, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        problem(f"{routes_path}: no routes (does `shipstream-gateway --routes` work?)")
        return
    routes = set()
    aliases = set()
    for ln in lines:
        parts = ln.split()
        if len(parts) != 2 or not parts[1].startswith("/"):
            problem(f"--routes line {ln!r} is not 'METHOD PATH'")
            continue
        method, path = parts[0].upper(), parts[1]
        # A catch-all prefix, however it is spelt (/beta/*, /beta/**, /beta/{path...}), is
        # the document's /beta/{path}.
        path = re.sub(r"/(\*\*?|\{[^}/]*(\.\.\.|\*)\})$", "/{path}", path)
        path = shape(path)
        if path.startswith("/v1/"):  # the alias of /v2: described once, under /v2
            aliases.add((method, "/v2/" + path[4:]))
            continue
        if method in ("*", "ANY"):
            forms = [m.upper() for m in METHODS if (m.upper(), path) in documented] or ["*"]
            routes.update((m, path) for m in forms)
        else:
            routes.add((method, path))
    routes |= SCAFFOLD_ROUTES
    # HEAD is served wherever GET is (dashboard, openapi.json); the document says so in prose.
    routes = {(m, p) for (m, p) in routes if not (m == "HEAD" and ("GET", p) in routes)}
    for m, p in sorted(aliases - routes):
        problem(f"--routes has the alias {m} /v1{p[3:]} but not {m} {p}")
    for m, p in sorted(routes - documented):
        problem(f"the gateway serves {m} {p}, the document does not describe it")
    for m, p in sorted(documented - routes - forwarded):
        problem(f"the document describes {m} {p}, the gateway does not register it")
    if routes <= documented and documented - forwarded <= routes:
        print(f"PASS: the document's {len(documented)} operations equal the gateway's routes "
              f"({len(documented - routes)} of them the forwarding of {', '.join(FORWARDED_PREFIXES)})")


def match_op(ops, method, path):
    """The documented operation a concrete request path falls under (concrete paths first)."""
    best = None
    for (m, shaped), (orig, op) in ops.items():
        if m != method:
            continue
        rx = "^" + re.escape(shaped).replace(r"\{\}", "[^/]+") + "$"
        if orig.endswith("/{path}"):  # a forwarded prefix: the rest of the path, slashes included
            rx = rx[: -len("[^/]+$")] + ".+$"
        if re.match(rx, path):
            templated = shaped.count("{}") + (0.5 if orig.endswith("/{path}") else 0)
            if best is None or templated < best[0]:
                best = (templated, orig, op)
    return best


def cmd_http(doc_path, base, key, requests_path):
    """REQUESTS_FILE: 'METHOD PATH-AND-QUERY [nokey] [expect=STATUS] [body=FILE] [save=NAME[=PATH]]'
    per line, in order.  POST without body= sends {}.  save= keeps a value of the JSON answer
    (PATH: dotted members and list indexes, default "id") that later lines use as @NAME@ in
    their path or body.  /v1/... is checked as its /v2 twin (the alias)."""
    doc = load(doc_path)
    ops = doc_operations(doc)
    n = 0
    before = len(problems)
    with open(requests_path, encoding="utf-8") as f:
        reqs = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
    saved = {}

    def subst(text):
        for k, v in saved.items():
            text = text.replace(f"@{k}@", v)
        return text

    for parts in reqs:
        method, target, flags = parts[0], subst(parts[1]), parts[2:]
        expect = next((int(x[7:]) for x in flags if x.startswith("expect=")), None)
        where = f"{method} {target}"
        path = target.split("?")[0]
        if path.startswith("/v1/"):
            path = "/v2/" + path[4:]
        found = match_op(ops, method, path)
        if not found:
            # A method the document does not give a path it describes: 405 with an error body.
            other = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if match_op(ops, m, path)]
            if not other:
                problem(f"{where}: no documented operation matches")
                continue
            op = {"responses": {"405": {"$ref": "#/components/responses/MethodNotAllowed"}}}
            orig = f"not documented for {method}: 405"
        else:
            _, orig, op = found
        req = urllib.request.Request(base + target, method=method)
        if "nokey" not in flags:
            req.add_header("Authorization", "Bearer " + key)
        if method in ("POST", "PUT", "PATCH"):
            req.data = b"{}"
            for x in flags:
                if x.startswith("body="):
                    with open(x[5:], encoding="utf-8") as f:
                        req.data = subst(f.read()).encode()
            req.add_header("Content-Type", "application/json")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as r:
                status, ctype, body = r.status, r.headers.get("Content-Type"), r.read()
        except urllib.error.HTTPError as e:
            status, ctype, body = e.code, e.headers.get("Content-Type"), e.read()
        if expect is not None and status != expect:
            problem(f"{where}: expected {expect}, got {status}: {body[:200]!r}")
            continue
        check_body(doc, f"{where} ({orig})", op, status, ctype, body)
        n += 1
        for x in flags:
            if x.startswith("save="):
                name, _, path = x[5:].partition("=")
                try:
                    v = json.loads(body)
                    for part in (path or "id").split("."):
                        v = v[int(part)] if isinstance(v, list) else v[part]
                    saved[name] = str(v)
                except (ValueError, KeyError, IndexError, TypeError):
                    problem(f"{where}: no {path or 'id'} to save as {name} in {body[:200]!r}")
    if len(problems) == before:
        print(f"PASS: {n} answers of a running gateway match the document (status, Content-Type, schema)")


def fetch(base, target, key):
    req = urllib.request.Request(base + target, headers={"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sample_value(schema):
    if "default" in schema:
        return str(schema["default"]).lower() if isinstance(schema["default"], bool) else str(schema["default"])
    if "enum" in schema:
        return str(schema["enum"][-1])
    if schema.get("type") == "integer":
        return str(schema.get("minimum", 1))
    return "x"


def cmd_params(doc_path, base, key):
    doc = load(doc_path)
    n = 0
    before = len(problems)
    for (method, shaped), (path, op) in sorted(doc_operations(doc).items()):
        if method != "GET" or not path.startswith("/db/") or "{" in path:
            continue
        params = [resolve(doc, p) for p in doc["paths"][path].get("parameters", []) + op.get("parameters", [])]
        for p in params:
            if p["in"] != "query":
                continue
            target = f"{path}?{p['name']}={sample_value(p.get('schema', {}))}"
            status, body = fetch(base, target, key)
            if status == 400 and b"unknown parameter" in body:
                problem(f"GET {target}: the document lists '{p['name']}', the gateway does not know it: {body[:200]!r}")
            n += 1
        status, body = fetch(base, path + "?no_such_parameter=1", key)
        if status != 400 or b"no_such_parameter" not in body:
            problem(f"GET {path}?no_such_parameter=1: expected 400 naming it, got {status} {body[:200]!r}")
        n += 1
    if len(problems) == before:
        print(f"PASS: {n} /db parameter checks: every listed parameter is known, an unknown one is 400")


def main(argv):
    cmds = {"spec": (cmd_spec, 1, 2), "routes": (cmd_routes, 2, 2), "params": (cmd_params, 3, 3),
            "http": (cmd_http, 4, 4)}
    if len(argv) < 2 or argv[1] not in cmds or not cmds[argv[1]][1] <= len(argv) - 2 <= cmds[argv[1]][2]:
        sys.stderr.write(__doc__)
        return 2
    cmds[argv[1]][0](*argv[2:])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
