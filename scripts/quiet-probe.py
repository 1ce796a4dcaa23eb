"""Quiet-path probe: one order at a time against a running embedded bazaar, then the saga's
per-hop latencies read from the services' own clocks (outbox created/published, the event
log's stored_at, the inbox's processed_at, the order's confirmed_at).

    BAZAAR_MAX_OPEN_ORDERS_PER_CUSTOMER=100000 BAZAAR_ADMIN_EMAIL=admin@probe.local \
      BAZAAR_ADMIN_PASSWORD=admin-password-1 target/release/bazaar serve --data-dir /tmp/probe \
      --listen 127.0.0.1:8100 &
    python3 scripts/quiet-probe.py http://127.0.0.1:8100/graphql /tmp/probe 100
"""
import json, sqlite3, statistics, sys, time, urllib.request
URL = sys.argv[1]; DATA = sys.argv[2]; N = int(sys.argv[3]) if len(sys.argv) > 3 else 100
def gql(q, v=None, tok=None):
    req = urllib.request.Request(URL, json.dumps({"query": q, "variables": v or {}}).encode(),
        {"content-type": "application/json", **({"authorization": "Bearer " + tok} if tok else {})})
    body = json.load(urllib.request.urlopen(req))
    if "errors" in body: raise Exception(body["errors"])
    return body["data"]
admin = gql('mutation{login(email:"admin@probe.local",password:"admin-password-1"){accessToken}}')["login"]["accessToken"]
pid = gql('mutation($i:CreateProductInput!){createProduct(input:$i){id}}', {"i": {"name": "P", "description": "d", "category": "c", "priceCents": 100, "stock": 1000000}}, admin)["createProduct"]["id"]
email = "u%d@probe.local" % time.time_ns()
tok = gql('mutation($i:RegisterInput!){register(input:$i){accessToken}}', {"i": {"email": email, "password": "correct-horse-1", "name": "U"}})["register"]["accessToken"]
addr = {"line1": "1 St", "city": "York", "postalCode": "YO1 7HH", "country": "GB"}
time.sleep(1)
ids = []
for i in range(N):
    d = gql('mutation($i:PlaceOrderInput!){placeOrder(input:$i){id}}', {"i": {"items": [{"productId": pid, "quantity": 1}], "shippingAddress": addr}}, tok)
    ids.append(d["placeOrder"]["id"])
    time.sleep(0.1)
time.sleep(1)
def db(n): return sqlite3.connect("file:%s/%s.db?mode=ro" % (DATA, n), uri=True)
o, c, b = db("orders"), db("catalog"), db("bus")
stored = dict(b.execute("select id, stored_at from bus_messages"))
def outbox(conn, typ):
    r = {}
    for id_, body, ca, pa in conn.execute("select id, body, created_at, published_at from outbox where event_type=?", (typ,)):
        r[json.loads(body)["aggregate_id"]] = (id_, ca, pa)
    return r
placed = outbox(o, "OrderPlaced")
types = [t for (t,) in c.execute("select distinct event_type from outbox")]
reserved = outbox(c, "StockReserved") if "StockReserved" in types else {}
cin = dict(c.execute("select event_id, processed_at from inbox"))
oin = dict(o.execute("select event_id, processed_at from inbox"))
rows = dict((r[0], r[1:]) for r in o.execute("select id, created_at, confirmed_at from orders"))
hops = {k: [] for k in ["order tx -> outbox row", "relay publish (orders)", "log -> catalog applied", "catalog applied -> its outbox row", "relay publish (catalog)", "log -> orders applied", "orders applied -> confirmed", "TOTAL"]}
print("catalog outbox types", types)
for oid in ids:
    if oid not in placed or oid not in reserved: continue
    e1, a1, p1 = placed[oid]; e2, a2, p2 = reserved[oid]
    created, confirmed = rows[oid]
    s1, s2 = stored[e1], stored[e2]
    hops["order tx -> outbox row"].append(a1 - created)
    hops["relay publish (orders)"].append(s1 - a1)
    hops["log -> catalog applied"].append(cin[e1] - s1)
    hops["catalog applied -> its outbox row"].append(a2 - cin[e1])
    hops["relay publish (catalog)"].append(s2 - a2)
    hops["log -> orders applied"].append(oin[e2] - s2)
    hops["orders applied -> confirmed"].append(confirmed - oin[e2])
    hops["TOTAL"].append(confirmed - created)
for k, v in hops.items():
    v.sort()
    if v: print("%-36s n=%d p50=%d p90=%d max=%d ms" % (k, len(v), v[len(v)//2], v[int(len(v)*.9)], v[-1]))
