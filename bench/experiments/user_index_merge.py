#!/usr/bin/env python3
"""The user index written per batch vs merged in bulk: a design experiment for issue #12.

Not the product: Python's sqlite3 on the store's schema (16 shard tables, WAL,
synchronous=FULL), a flash's orders (every buyer new, random shard), 400,000 orders first, then
three rounds of 50,000 in batches of 128. "idx" keeps the (user_id, order_id) index on every
shard table, as the store does; a number N drops it and merges the new orders' entries, sorted,
into a separate (user_id, order_id) table every N batches (one merge per round with a huge N).
Prints, per round, (CPU µs per order, wall µs per order); both include Python's own cost.

    python3 bench/experiments/user_index_merge.py idx
    python3 bench/experiments/user_index_merge.py 800     # ~4 s of orders at 26,000/s
"""
import sqlite3, random, time, os, sys, uuid
SHARDS=16
def open_db(path, with_index):
    if os.path.exists(path): os.remove(path)
    for ext in ("-wal","-shm"):
        if os.path.exists(path+ext): os.remove(path+ext)
    c=sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=FULL")
    for s in range(SHARDS):
        c.execute(f"""CREATE TABLE o{s} (order_id INTEGER PRIMARY KEY, campaign_id TEXT NOT NULL, sku TEXT NOT NULL,
          user_id TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price_cents INTEGER NOT NULL, amount_cents INTEGER NOT NULL,
          status TEXT NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL, pay_deadline INTEGER NOT NULL,
          paid_at INTEGER, updated_at INTEGER NOT NULL) STRICT""")
        if with_index: c.execute(f"CREATE INDEX o{s}_user ON o{s} (user_id, order_id)")
        c.execute(f"CREATE INDEX o{s}_campaign ON o{s} (campaign_id)")
        c.execute(f"CREATE INDEX o{s}_unpaid ON o{s} (status, pay_deadline)")
        if not with_index:
            c.execute(f"CREATE TABLE u{s} (user_id TEXT NOT NULL, order_id INTEGER NOT NULL, PRIMARY KEY(user_id, order_id)) WITHOUT ROWID")
    if not with_index:
        c.execute("CREATE TABLE merged (shard INTEGER PRIMARY KEY, upto INTEGER NOT NULL)")
        c.executemany("INSERT INTO merged VALUES (?,0)", [(s,) for s in range(SHARDS)])
    return c
oid=[10**12]
def batch(n):
    rows=[[] for _ in range(SHARDS)]
    for _ in range(n):
        oid[0]+=16
        u=uuid.uuid4().hex
        s=random.randrange(SHARDS)
        rows[s].append((oid[0],"camp","sku",u,1,100,100,"pending_payment",1,oid[0],oid[0]+900000,None,oid[0]))
    return rows
def write(c, rows):
    c.execute("BEGIN IMMEDIATE")
    for s,r in enumerate(rows):
        if r: c.executemany(f"INSERT INTO o{s} VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", r)
    c.execute("COMMIT")
def merge(c):
    c.execute("BEGIN IMMEDIATE")
    for s in range(SHARDS):
        upto=c.execute("SELECT upto FROM merged WHERE shard=?", (s,)).fetchone()[0]
        top=c.execute(f"SELECT coalesce(max(order_id),0) FROM o{s}").fetchone()[0]
        c.execute(f"INSERT INTO u{s} SELECT user_id, order_id FROM o{s} WHERE order_id > ? AND order_id <= ? ORDER BY user_id, order_id", (upto, top))
        c.execute("UPDATE merged SET upto=? WHERE shard=?", (top, s))
    c.execute("COMMIT")
def run(with_index, merge_every):
    random.seed(1); oid[0]=10**12
    c=open_db(f"/tmp/user_index_merge-{'idx' if with_index else 'lsm'}.db", with_index)
    for i in range(400_000//128):
        write(c, batch(128))
        if not with_index and i % merge_every == merge_every-1: merge(c)
    if not with_index: merge(c)
    out=[]
    for rnd in range(3):
        pre=[batch(128) for _ in range(50_000//128)]
        t=time.process_time(); w=time.time()
        for i,b in enumerate(pre):
            write(c,b)
            if not with_index and i % merge_every == merge_every-1: merge(c)
        if not with_index: merge(c)
        out.append(((time.process_time()-t)*1e6/ (len(pre)*128), (time.time()-w)*1e6/(len(pre)*128)))
    path=c.execute("PRAGMA database_list").fetchone()[2]
    c.close()
    for ext in ("","-wal","-shm"):
        if os.path.exists(path+ext): os.remove(path+ext)
    return out
mode=sys.argv[1]
if mode=="idx": print("with index", run(True,0))
else: print(f"lsm merge every {mode} batches", run(False,int(mode)))
