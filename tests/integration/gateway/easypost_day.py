#!/usr/bin/env python3
"""A shipping team's realistic day with the official easypost-python client.

The client is pointed at API_BASE (the gateway's /v2, or easypost-sim's /v2 to check
this script itself) and calls every operation of the gateway's EasyPost surface:
verify addresses, create shipments, regenerate rates, buy (with concurrent retries of
the same buy), convert a label, insure, refund, a return, a batch (add/remove, buy,
label, scan form), a pickup (buy, cancel), a scan form, refunds and insurances,
trackers, events, and lists with pagination.

Every answer is compared with what easypost-sim answers directly (SIM_BASE, read with
SIM_KEY) for the same object: same status and same JSON.  Lists are compared page by
page (same query on both).  The concurrent buys must leave exactly one purchase: one
tracking code, and the sim's balance (POST /sim/funds) lowered by exactly one rate.

Usage:
  PY=$(tests/python/venv.sh)
  $PY tests/integration/gateway/easypost_day.py --api-base http://127.0.0.1:8000/v2 \
      --key <gateway key> --sim-base http://127.0.0.1:8080 --sim-key <sim key>
  (or EASYPOST_DAY_API_BASE, EASYPOST_DAY_KEY, EASYPOST_DAY_SIM_BASE, EASYPOST_DAY_SIM_KEY).
Run the sim with a large SIM_TIME_SCALE (e.g. 86400: one simulated day per real day) so
trackers and refunds do not move while answers are compared.  Prints one "PASS: ..."
line per step; exits 1 at the first difference with both sides.
"""
import argparse
import base64
import concurrent.futures
import json
import os
import sys
import threading
import urllib.error
import urllib.request

import easypost

_tls = threading.local()


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print(f"PASS: {msg}", flush=True)


class Day:
    def __init__(self, a):
        self.a = a
        self.client = easypost.EasyPostClient(a.key, api_base=a.api_base.rstrip("/"), timeout=30)
        self.client.subscribe_to_response_hook(self._hook)
        self.sim = a.sim_base.rstrip("/")
        self.sim_auth = "Basic " + base64.b64encode(f"{a.sim_key}:".encode()).decode()
        self.calls = 0

    # -- raw answers ------------------------------------------------------------------
    @staticmethod
    def _hook(**kw):
        _tls.last = (kw.get("http_status"), kw.get("response_body"))

    def call(self, name, fn, /, *args, **kw):
        """Runs a client call; returns (status, JSON) of the HTTP answer it got."""
        _tls.last = None
        try:
            fn(*args, **kw)
        except easypost.errors.ApiError as e:
            if e.http_status is None:
                fail(f"{name}: {e}")
        except Exception as e:  # a transport error is a failure of the day
            fail(f"{name}: {type(e).__name__}: {e}")
        if _tls.last is None:
            fail(f"{name}: no answer captured")
        self.calls += 1
        st, body = _tls.last
        try:
            return st, json.loads(body)
        except (TypeError, ValueError):
            fail(f"{name}: status {st}, not JSON: {str(body)[:300]}")

    def expect(self, name, fn, /, *args, status=200, **kw):
        st, j = self.call(name, fn, *args, **kw)
        if st != status:
            fail(f"{name}: status {st}, expected {status}: {json.dumps(j)[:600]}")
        return j

    def sim_req(self, method, path, body=None):
        req = urllib.request.Request(
            self.sim + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": self.sim_auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def same(self, name, got, path, pick=lambda j: j):
        """An answer (its status checked already) must equal pick(the sim's GET path)."""
        sst, sj = self.sim_req("GET", "/v2" + path)
        if sst != 200:
            fail(f"{name}: the sim answers GET {path} {sst}: {json.dumps(sj)[:300]}")
        want = pick(sj)
        if got != want:
            fail(
                f"{name}: differs from the sim's GET {path}\n  got  {json.dumps(got, sort_keys=True)[:1500]}"
                f"\n  sim  {json.dumps(want, sort_keys=True)[:1500]}"
            )

    def same_read(self, name, fn, /, *args, path, **kw):
        """A read through the client compared with the same read on the sim."""
        st, j = self.call(name, fn, *args, **kw)
        sst, sj = self.sim_req("GET", "/v2" + path)
        if (st, j) != (sst, sj):
            fail(
                f"{name}: differs from the sim's GET {path}\n  got  {st} {json.dumps(j, sort_keys=True)[:1500]}"
                f"\n  sim  {sst} {json.dumps(sj, sort_keys=True)[:1500]}"
            )
        return j

    # -- the day ----------------------------------------------------------------------
    def run(self):
        c = self.client
        home = {"name": "Jack Sparrow", "street1": "388 Townsend St", "street2": "Apt 20",
                "city": "San Francisco", "state": "CA", "zip": "94107", "country": "US",
                "email": "test@example.com", "phone": "5555555555"}
        customers = [
            {"name": "Elizabeth Swan", "street1": "179 N Harbor Dr", "city": "Redondo Beach",
             "state": "CA", "zip": "90277", "country": "US"},
            {"name": "Joshamee Gibbs", "street1": "500 Boylston St", "city": "Boston",
             "state": "MA", "zip": "02116", "country": "US"},
            {"name": "Tia Dalma", "street1": "600 Decatur St", "city": "New Orleans",
             "state": "LA", "zip": "70130", "country": "US"},
        ]
        parcel = {"length": 10, "width": 8, "height": 4, "weight": 15.4}

        # addresses: create, create and verify, verify, retrieve, a failed verification
        a = self.expect("address create", c.address.create, status=201, **home)
        self.same("address create", a, f"/addresses/{a['id']}")
        v = self.expect("address verify", c.address.verify, a["id"])
        self.same("address verify", v["address"], f"/addresses/{v['address']['id']}")
        cv = self.expect("address create_and_verify", c.address.create_and_verify, **customers[0])
        self.same("address create_and_verify", cv["address"], f"/addresses/{cv['address']['id']}")
        bad = self.expect("address create (bad)", c.address.create, status=201, street1="invalid")
        st, j = self.call("address verify (bad)", c.address.verify, bad["id"])
        if st != 422 or j["error"]["code"] != "ADDRESS.VERIFY.FAILURE":
            fail(f"address verify (bad): {st} {j}")
        self.same_read("address retrieve", c.address.retrieve, a["id"], path=f"/addresses/{a['id']}")
        ok("addresses: create, verify, create_and_verify, 422 verify failure, retrieve")

        # shipments: create, rerate, buy, label, insure
        shp = []
        for to in customers:
            s = self.expect("shipment create", c.shipment.create, status=201, from_address=home,
                            to_address=to, parcel=parcel, reference=f"day-{to['zip']}")
            self.same("shipment create", s, f"/shipments/{s['id']}")
            shp.append(s)
        rr = self.expect("shipment regenerate_rates", c.shipment.regenerate_rates, shp[0]["id"])
        self.same("shipment rerate", rr["rates"], f"/shipments/{shp[0]['id']}", pick=lambda j: j["rates"])
        ok("shipments: created 3, rates regenerated")

        # concurrent retries of the same buy: exactly one purchase
        self.sim_req("POST", "/sim/funds", {"balance": "1000.00"})
        sid = shp[0]["id"]
        rates = sorted(rr["rates"], key=lambda r: float(r["rate"]))
        rate = rates[0]

        def one_buy(_):
            return self.call("shipment buy (concurrent)", c.shipment.buy, sid, rate={"id": rate["id"]})

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            answers = list(ex.map(one_buy, range(8)))
        good = [j for st, j in answers if st == 200]
        others = [(st, j) for st, j in answers if st != 200]
        if not good:
            fail(f"concurrent buys: no 200: {answers[:2]}")
        if any(st != 422 or j["error"]["code"] != "SHIPMENT.POSTAGE.EXISTS" for st, j in others):
            fail(f"concurrent buys: unexpected answers {others[:2]}")
        codes = {j["tracking_code"] for j in good}
        if len(codes) != 1:
            fail(f"concurrent buys: {len(codes)} tracking codes {codes}")
        _, funds = self.sim_req("GET", "/sim/funds")
        spent = round((1000.0 - float(funds["balance"])) * 100)
        if spent != round(float(rate["rate"]) * 100):
            fail(f"concurrent buys: balance lowered by {spent} cents, one rate is {rate['rate']}")
        self.same("shipment buy", good[0], f"/shipments/{sid}")
        ok(f"buy: 8 concurrent retries, {len(good)} answered 200 with one tracking code, one rate charged")
        bought = [good[0]]
        for s in shp[1:]:
            b = self.expect("shipment buy", c.shipment.buy, s["id"], rate=sorted(
                s["rates"], key=lambda r: float(r["rate"]))[0])
            self.same("shipment buy", b, f"/shipments/{s['id']}")
            bought.append(b)
        st, j = self.call("shipment buy again", c.shipment.buy, sid, rate={"id": rate["id"]})
        if st != 422:
            fail(f"buy of a bought shipment: {st}")
        lab = self.expect("shipment label", c.shipment.label, sid, file_format="ZPL")
        self.same("shipment label", lab, f"/shipments/{sid}")
        ins = self.expect("shipment insure", c.shipment.insure, sid, amount="100")
        self.same("shipment insure", ins, f"/shipments/{sid}")
        ok("shipments: bought, 422 on a second buy, label ZPL, insured")

        # refund: shipment refund, refunds create, a refunded shipment stays refunded
        rf = self.expect("shipment refund", c.shipment.refund, bought[1]["id"])
        if rf["refund_status"] not in ("submitted", "refunded"):
            fail(f"refund: refund_status {rf['refund_status']}")
        self.same("shipment refund", rf, f"/shipments/{bought[1]['id']}")
        rl = self.expect("refund create", c.refund.create, status=201, carrier="USPS",
                         tracking_codes=[bought[2]["tracking_code"]])
        for r in rl:
            self.same("refund create", r, f"/refunds/{r['id']}")
        st, j = self.call("shipment refund again", c.shipment.refund, bought[1]["id"])
        if st != 422:
            fail(f"second refund: {st}")
        self.same_read("shipment retrieve (refunded)", c.shipment.retrieve, bought[1]["id"],
                       path=f"/shipments/{bought[1]['id']}")
        self.same_read("refund retrieve", c.refund.retrieve, rl[0]["id"], path=f"/refunds/{rl[0]['id']}")
        ok("refunds: shipment refund, POST /refunds, 422 on a second refund, state kept")

        # a return
        ret = self.expect("return create", c.shipment.create, status=201, from_address=customers[1],
                          to_address=home, parcel=parcel, is_return=True)
        rb = self.expect("return buy", c.shipment.buy, ret["id"],
                         rate=sorted(ret["rates"], key=lambda r: float(r["rate"]))[0])
        if not rb["is_return"]:
            fail("return: is_return false")
        self.same("return buy", rb, f"/shipments/{ret['id']}")
        ok("return: is_return shipment bought")

        # a batch: create, add/remove, buy, label, scan form
        bt = self.expect("batch create", c.batch.create, shipments=[
            {"from_address": home, "to_address": customers[0], "parcel": parcel},
            {"from_address": home, "to_address": customers[2], "parcel": parcel}])
        self.same("batch create", bt, f"/batches/{bt['id']}")
        extra = self.expect("shipment create", c.shipment.create, status=201, from_address=home,
                            to_address=customers[1], parcel=parcel)
        for name, fn in (("batch add_shipments", c.batch.add_shipments),
                         ("batch remove_shipments", c.batch.remove_shipments)):
            j = self.expect(name, fn, bt["id"], shipments=[{"id": extra["id"]}])
            self.same(name, j, f"/batches/{bt['id']}")
        for name, fn, kw in (("batch buy", c.batch.buy, {}),
                             ("batch label", c.batch.label, {"file_format": "PDF"}),
                             ("batch scan_form", c.batch.create_scan_form, {})):
            j = self.expect(name, fn, bt["id"], **kw)
            self.same(name, j, f"/batches/{bt['id']}")
        j = self.same_read("batch retrieve", c.batch.retrieve, bt["id"], path=f"/batches/{bt['id']}")
        if not j.get("label_url") or j["num_shipments"] != 2 or not j.get("scan_form"):
            fail(f"batch: {json.dumps(j)[:400]}")
        ok("batch: created with 2 shipments, add/remove, bought, label_url, scan form")

        # a pickup: create, buy, and one cancelled
        for cancel in (False, True):
            p = self.expect("pickup create", c.pickup.create, address=home, shipment={"id": sid},
                            min_datetime="2025-03-08", max_datetime="2025-03-09",
                            instructions="Pickup at front door", reference=f"day-pickup-{cancel}")
            self.same("pickup create", p, f"/pickups/{p['id']}")
            pb = self.expect("pickup buy", c.pickup.buy, p["id"], carrier="USPS", service="NextDay")
            self.same("pickup buy", pb, f"/pickups/{p['id']}")
            if cancel:
                pc = self.expect("pickup cancel", c.pickup.cancel, p["id"])
                self.same("pickup cancel", pc, f"/pickups/{p['id']}")
        self.same_read("pickup retrieve", c.pickup.retrieve, p["id"], path=f"/pickups/{p['id']}")
        ok("pickups: created, bought (scheduled), one cancelled")

        # a scan form of the return and the other bought shipment
        sf = self.expect("scan_form create", c.scan_form.create,
                         shipments=[{"id": ret["id"]}, {"id": bought[0]["id"]}])
        self.same("scan_form create", sf, f"/scan_forms/{sf['id']}")
        self.same_read("scan_form retrieve", c.scan_form.retrieve, sf["id"], path=f"/scan_forms/{sf['id']}")
        ok("scan form: 2 shipments")

        # insurance of a package shipped elsewhere
        iv = self.expect("insurance create", c.insurance.create, status=201, from_address=home,
                         to_address=customers[0], carrier="USPS", amount="100",
                         tracking_code="9400100208303109500690", reference="day-insurance")
        self.same("insurance create", iv, f"/insurances/{iv['id']}")
        self.same_read("insurance retrieve", c.insurance.retrieve, iv["id"], path=f"/insurances/{iv['id']}")
        ok("insurance: created and retrieved")

        # trackers
        t = self.expect("tracker create", c.tracker.create, tracking_code="EZ1000000001", carrier="USPS")
        self.same("tracker create", t, f"/trackers/{t['id']}")
        self.same_read("tracker retrieve", c.tracker.retrieve, t["id"], path=f"/trackers/{t['id']}")
        ok("trackers: created and retrieved")

        # events
        ev = self.same_read("events list", c.event.all, page_size=5, path="/events?page_size=5")
        if ev["events"]:
            e = ev["events"][0]["id"]
            self.same_read("event retrieve", c.event.retrieve, e, path=f"/events/{e}")
        ok(f"events: {len(ev['events'])} listed, one retrieved")

        # lists with pagination: every page equal to the sim's same page
        for name, svc, key in (("shipments", c.shipment, "shipments"), ("trackers", c.tracker, "trackers"),
                               ("addresses", c.address, "addresses"), ("batches", c.batch, "batches"),
                               ("pickups", c.pickup, "pickups"), ("scan_forms", c.scan_form, "scan_forms"),
                               ("refunds", c.refund, "refunds"), ("insurances", c.insurance, "insurances")):
            page = self.same_read(f"{name} list", svc.all, page_size=2, path=f"/{key}?page_size=2")
            pages, seen = 1, len(page[key])
            while page.get("has_more") and pages < 5:
                before = page[key][-1]["id"]
                page = self.same_read(f"{name} list page {pages + 1}", svc.all, page_size=2, before_id=before,
                                      path=f"/{key}?before_id={before}&page_size=2")
                pages += 1
                seen += len(page[key])
            ok(f"list {name}: {pages} page(s), {seen} objects, each page as the sim's")

        # errors pass through: unknown ids
        for name, fn, arg in (("shipment", c.shipment.retrieve, "shp_nope"), ("batch", c.batch.retrieve, "batch_nope"),
                              ("pickup", c.pickup.retrieve, "pickup_nope")):
            st, j = self.call(f"{name} retrieve unknown", fn, arg)
            if st != 404 or j["error"]["code"] != "NOT_FOUND":
                fail(f"{name} retrieve unknown: {st} {j}")
        self.sim_req("POST", "/sim/funds", {"unlimited": True})
        ok(f"404 NOT_FOUND for unknown ids; {self.calls} client calls in the day")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api-base", default=os.environ.get("EASYPOST_DAY_API_BASE"))
    p.add_argument("--key", default=os.environ.get("EASYPOST_DAY_KEY"))
    p.add_argument("--sim-base", default=os.environ.get("EASYPOST_DAY_SIM_BASE"))
    p.add_argument("--sim-key", default=os.environ.get("EASYPOST_DAY_SIM_KEY", ""))
    a = p.parse_args()
    if not a.api_base or not a.key or not a.sim_base:
        p.error("--api-base, --key and --sim-base (or EASYPOST_DAY_*) are required")
    Day(a).run()


if __name__ == "__main__":
    main()
