"""The gateway's /mcp driven by the official MCP Python SDK (PyPI mcp).

usage: mcp_client.py URL API_KEY tools|purchase

tools     initialize (the SDK's default probe, then the handshake; and the
          legacy handshake), list tools, call every listed tool, check each
          structuredContent against the tool's outputSchema (JSON Schema
          2020-12), purchase tools absent, bad arguments and unknown tools.
purchase  the money tools listed (GATEWAY_MCP_ALLOW_PURCHASE=1), money in
          their descriptions; buy_shipment twice with the same arguments (one
          purchase: the shell checks the sim's funds), by carrier and service;
          refund_shipment twice asks once.  Prints "SHIPMENT <id>" per purchase.
Prints "PASS: ..." lines; exits 1 with "FAIL: ..." on the first failure.
"""

import asyncio
import os
import sys
import time

import httpx2
import jsonschema
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

URL, KEY, PHASE = sys.argv[1], sys.argv[2], sys.argv[3]

FROM = {"name": "Jack Sparrow", "street1": "388 Townsend St", "street2": "Apt 20",
        "city": "San Francisco", "state": "CA", "zip": "94107", "country": "US",
        "email": "test@example.com", "phone": "5555555555"}
TO = {"name": "Elizabeth Swan", "street1": "179 N Harbor Dr", "city": "Redondo Beach",
      "state": "CA", "zip": "90277", "country": "US"}
PARCEL = {"length": 10, "width": 8, "height": 4, "weight": 15.4}
READ_TOOLS = {"verify_address", "quote_shipment", "track", "get_shipment", "search_shipments",
              "shipping_analytics"}
PURCHASE_TOOLS = {"buy_shipment", "refund_shipment"}


def fail(msg):
    print("FAIL: " + msg, flush=True)
    os._exit(1)  # not SystemExit: anyio would wrap it in an exception group


def ok(msg):
    print("PASS: " + msg, flush=True)


def client(mode="auto"):
    headers = {"Authorization": "Bearer " + KEY} if KEY else {}
    hc = httpx2.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(URL, http_client=hc), mode=mode)


class Checker:
    def __init__(self, tools):
        self.tools = {t.name: t for t in tools}

    async def call(self, c, name, args, want_error=False):
        r = await c.call_tool(name, args)
        text = " ".join(getattr(x, "text", "") for x in r.content)
        if not r.content or r.content[0].type != "text" or not text:
            fail(f"{name}: no text content")
        if len(text.encode()) > 2048:
            fail(f"{name}: text of {len(text.encode())} bytes, over the 2 KiB bound")
        if want_error:
            if not r.is_error:
                fail(f"{name} {args}: expected isError, got {text}")
            return text
        if r.is_error:
            fail(f"{name} {args}: isError: {text}")
        sc = r.structured_content
        if sc is None:
            fail(f"{name}: no structuredContent")
        schema = self.tools[name].output_schema
        try:
            jsonschema.Draft202012Validator(schema).validate(sc)
        except jsonschema.ValidationError as e:
            fail(f"{name}: structuredContent does not follow outputSchema: {e.message} at "
                 f"{list(e.absolute_path)}")
        return sc, text


def check_tool_list(tools, want):
    names = {t.name for t in tools}
    if names != want:
        fail(f"tools listed: {sorted(names)}, expected {sorted(want)}")
    for t in tools:
        for which, s in (("inputSchema", t.input_schema), ("outputSchema", t.output_schema)):
            if not s or s.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
                fail(f"{t.name}: {which} does not declare JSON Schema 2020-12")
            jsonschema.Draft202012Validator.check_schema(s)
        if t.input_schema.get("additionalProperties") is not False:
            fail(f"{t.name}: inputSchema allows unknown arguments")
        a = t.annotations
        if a is None or a.read_only_hint is None or a.destructive_hint is None \
                or a.idempotent_hint is None:
            fail(f"{t.name}: annotations incomplete: {a}")
        if not t.description:
            fail(f"{t.name}: no description")
    ok(f"tools/list: {sorted(names)}, each with 2020-12 input/output schemas and annotations")


async def tools_phase():
    async with client() as c:  # auto: server/discover first, then initialize
        if c.protocol_version != "2025-11-25":
            fail(f"negotiated {c.protocol_version}, expected 2025-11-25")
        if c.server_info is None or c.server_info.name != "shipstream-gateway":
            fail(f"serverInfo: {c.server_info}")
        if not c.instructions or c.server_capabilities.tools is None:
            fail("initialize: no instructions or no tools capability")
        ok("SDK default connect (discover probe, then initialize): 2025-11-25, serverInfo, "
           "instructions, tools capability")
        await c.send_ping()
        ok("ping")
        tools = (await c.list_tools()).tools
        check_tool_list(tools, READ_TOOLS)
        ro = {t.name for t in tools if t.annotations.read_only_hint}
        if ro != {"get_shipment", "search_shipments", "shipping_analytics"}:
            fail(f"readOnlyHint on {sorted(ro)}")
        ck = Checker(tools)

        sc, text = await ck.call(c, "verify_address", FROM)
        if sc["verified"] is not True or not sc["address"]["id"].startswith("adr_"):
            fail(f"verify_address: {sc}")
        bad = dict(FROM, street1="1 UNDELIVERABLE St")
        sc, _ = await ck.call(c, "verify_address", bad)
        if sc["verified"] is not False or not sc["messages"]:
            fail(f"verify_address on an undeliverable address: {sc}")
        ok("verify_address: verified, and an undeliverable one verified=false (not an error)")

        sc, text = await ck.call(c, "quote_shipment",
                                 {"from_address": FROM, "to_address": TO, "parcel": PARCEL,
                                  "reference": "mcp-it"})
        shp = sc["shipment_id"]
        rates = sc["rates"]
        cheap = [r for r in rates if r["cheapest"]]
        fast = [r for r in rates if r["fastest"]]
        if len(rates) < 2 or len(cheap) != 1 or len(fast) != 1:
            fail(f"quote_shipment: rates {rates}")
        low = min(float(r["rate"]) for r in rates)
        if float(cheap[0]["rate"]) != low or cheap[0]["id"] != sc["cheapest_rate_id"]:
            fail("quote_shipment: the cheapest mark is not on the lowest rate")
        dmin = min(r["delivery_days"] for r in rates if r["delivery_days"] is not None)
        if fast[0]["delivery_days"] != dmin or fast[0]["id"] != sc["fastest_rate_id"]:
            fail("quote_shipment: the fastest mark is not on the fewest delivery days")
        if "Cheapest" not in text:
            fail(f"quote_shipment text: {text}")
        ok(f"quote_shipment: {shp}, {len(rates)} rates, cheapest and fastest marked")
        sc, _ = await ck.call(c, "quote_shipment", {"from_address": TO, "to_address": FROM,
                                                    "parcel": {"weight": 3}})
        second = sc["shipment_id"]

        sc, text = await ck.call(c, "track", {"tracking_code": "EZ1000000001", "carrier": "USPS"})
        if not sc["id"].startswith("trk_") or sc["tracking_code"] != "EZ1000000001":
            fail(f"track: {sc}")
        ok(f"track: {sc['id']} {sc['status']}, {len(sc['events'])} event(s)")

        # The quote went gateway -> Kafka -> sync worker -> PostgreSQL.
        deadline = time.monotonic() + 30
        while True:
            r = await c.call_tool("get_shipment", {"id": shp})
            r2 = await c.call_tool("get_shipment", {"id": second})
            if not r.is_error and not r2.is_error:
                break
            if time.monotonic() > deadline:
                fail(f"get_shipment {shp}: not synced within 30 s: {r.content[0].text}")
            await asyncio.sleep(0.2)
        sc, text = await ck.call(c, "get_shipment", {"id": shp})
        if sc["id"] != shp or sc["reference"] != "mcp-it" or sc["to_address"]["zip"] != "90277":
            fail(f"get_shipment: {sc}")
        ok(f"get_shipment: {shp} read back from PostgreSQL after the Kafka hand-off")
        text = await ck.call(c, "get_shipment", {"id": "shp_doesnotexist"}, want_error=True)
        if "No shipment" not in text:
            fail(f"get_shipment unknown id: {text}")

        # easypost-sim's EZTK key makes test-mode objects; production is the default
        sc, _ = await ck.call(c, "search_shipments", {"text": shp})
        if sc["count"] != 0:
            fail(f"search_shipments found a test-mode shipment in production (default): {sc}")
        sc, _ = await ck.call(c, "search_shipments", {"text": shp, "mode": "test"})
        if sc["count"] != 1 or sc["shipments"][0]["id"] != shp:
            fail(f"search_shipments text=id: {sc}")
        sc, _ = await ck.call(c, "search_shipments", {"text": "Redondo", "mode": "all"})
        if shp not in [s["id"] for s in sc["shipments"]]:
            fail(f"search_shipments text=Redondo (address words): {sc}")
        sc1, text = await ck.call(c, "search_shipments", {"limit": 1, "mode": "test"})
        if sc1["count"] != 1 or not sc1["next_cursor"]:
            fail(f"search_shipments limit=1: {sc1} (two shipments were made)")
        sc2, _ = await ck.call(c, "search_shipments", {"limit": 1, "mode": "test",
                                                         "cursor": sc1["next_cursor"]})
        if sc2["count"] != 1 or sc2["shipments"][0]["id"] == sc1["shipments"][0]["id"]:
            fail(f"search_shipments page 2: {sc2}")
        sc, _ = await ck.call(c, "search_shipments", {"created_from": "2000-01-01",
                                                      "created_to": "2000-01-02"})
        if sc["count"] != 0 or sc["next_cursor"] is not None:
            fail(f"search_shipments in 2000: {sc}")
        ok("search_shipments: mode (production by default), by id, by address words, keyset pages, "
           "date range")

        sc, text = await ck.call(c, "shipping_analytics", {"days": 7, "mode": "test"})
        if sc["days"] != 7 or "summary" not in sc:
            fail(f"shipping_analytics: {sc}")
        await ck.call(c, "shipping_analytics", {})
        sc, _ = await ck.call(c, "shipping_analytics", {"days": 365})
        if sc["days"] != 365:
            fail(f"shipping_analytics days=365 (the dashboard's year): {sc}")
        ok(f"shipping_analytics: {text[:120]}")

        # Arguments that break the inputSchema: isError naming the argument.
        for name, args, want in (
                ("search_shipments", {"limit": 500}, "arguments.limit"),
                ("search_shipments", {"colour": "red"}, "arguments.colour"),
                ("search_shipments", {"cursor": "zz"}, "cursor"),
                ("search_shipments", {"created_from": "yesterday"}, "created_from"),
                ("shipping_analytics", {"days": "7"}, "arguments.days"),
                ("shipping_analytics", {"days": 401}, "arguments.days"),
                ("shipping_analytics", {"mode": "live"}, "arguments.mode"),
                ("quote_shipment", {"from_address": FROM, "to_address": TO}, "parcel"),
                ("get_shipment", {}, "arguments.id")):
            text = await ck.call(c, name, args, want_error=True)
            if want not in text:
                fail(f"{name} {args}: message does not name {want}: {text}")
        ok("bad arguments: isError naming the argument (the model can correct itself)")
        try:
            await c.call_tool("buy_shipment", {"shipment_id": shp, "rate_id": "rate_x"})
            fail("buy_shipment callable without GATEWAY_MCP_ALLOW_PURCHASE")
        except MCPError as e:
            if e.code != -32602:
                fail(f"unknown tool: code {e.code}")
        ok("purchase tools absent by default; calling one is -32602 (unknown tool)")

    async with client("legacy") as c:
        if c.protocol_version != "2025-11-25":
            fail(f"legacy handshake negotiated {c.protocol_version}")
        if len((await c.list_tools()).tools) != len(READ_TOOLS):
            fail("legacy: tools")
    ok("SDK legacy handshake (initialize only) works too")


async def purchase_phase():
    async with client() as c:
        tools = (await c.list_tools()).tools
        check_tool_list(tools, READ_TOOLS | PURCHASE_TOOLS)
        for t in tools:
            if t.name in PURCHASE_TOOLS and ("money" not in t.description.lower()
                                             or not t.annotations.destructive_hint):
                fail(f"{t.name}: description/annotations: {t.description} {t.annotations}")
        ck = Checker(tools)
        sc, _ = await ck.call(c, "quote_shipment", {"from_address": FROM, "to_address": TO,
                                                    "parcel": PARCEL})
        bought, rate = sc["shipment_id"], sc["cheapest_rate_id"]
        cheap = next(r for r in sc["rates"] if r["cheapest"])
        args = {"shipment_id": bought, "rate_id": rate}
        a, t1 = await ck.call(c, "buy_shipment", args)
        b, t2 = await ck.call(c, "buy_shipment", args)
        if a["replayed"] or not b["replayed"] or not a["tracking_code"] \
                or a["tracking_code"] != b["tracking_code"] or a["rate"] != cheap["rate"]:
            fail(f"two buys with the same arguments: {a} / {b}")
        ok(f"buy_shipment twice with the same arguments: one purchase ({a['tracking_code']}, "
           f"{a['rate']}), the second replayed")
        print("SHIPMENT " + bought, flush=True)
        # by carrier and service instead of a rate id
        sc, _ = await ck.call(c, "quote_shipment", {"from_address": FROM, "to_address": TO,
                                                    "parcel": PARCEL})
        fast = next(r for r in sc["rates"] if r["fastest"])
        d, _ = await ck.call(c, "buy_shipment", {"shipment_id": sc["shipment_id"],
                                                 "carrier": fast["carrier"].lower(),
                                                 "service": fast["service"]})
        if d["rate"] != fast["rate"] or d["carrier"] != fast["carrier"]:
            fail(f"buy by carrier/service bought {d}, expected {fast}")
        print("SHIPMENT " + sc["shipment_id"], flush=True)
        text = await ck.call(c, "buy_shipment", {"shipment_id": sc["shipment_id"]},
                             want_error=True)
        if "rate_id" not in text:
            fail(f"buy without a rate: {text}")
        ok("buy_shipment by carrier and service; without a rate: isError naming rate_id")
        a, _ = await ck.call(c, "refund_shipment", {"shipment_id": bought})
        b, text = await ck.call(c, "refund_shipment", {"shipment_id": bought})
        if a["already_requested"] or a["refund_status"] != "submitted" \
                or not b["already_requested"] or b["refund_status"] != "submitted":
            fail(f"refund twice: {a} / {b}")
        ok(f"refund_shipment twice: asked once ({a['refund_status']}), the second call says so")
        _, _ = await ck.call(c, "quote_shipment", {"from_address": FROM, "to_address": TO,
                                                   "parcel": PARCEL})
        q, _ = await ck.call(c, "quote_shipment", {"from_address": FROM, "to_address": TO,
                                                   "parcel": PARCEL})
        text = await ck.call(c, "refund_shipment", {"shipment_id": q["shipment_id"]},
                             want_error=True)
        if "never bought" not in text:
            fail(f"refund of an unbought shipment: {text}")
        ok("refund_shipment of a shipment never bought: isError saying so")


if PHASE == "tools":
    asyncio.run(tools_phase())
elif PHASE == "purchase":
    asyncio.run(purchase_phase())
else:
    fail("unknown phase " + PHASE)
