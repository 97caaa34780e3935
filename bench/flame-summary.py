#!/usr/bin/env python3
"""What a folded perf profile (inferno-collapse-perf) spent its samples on: the share of each
thread, of the frames the gateway's cost is usually discussed in (inclusive: the frame and
everything it called), and the hottest frames by self time.
Usage: bench/flame-summary.py profile.folded"""
import collections
import sys

# Inclusive groups: a sample counts once for each group one of its frames matches.
GROUPS = [
    ("persistence thread (store writes and acks)", "flashgate::persistence::workers::run"),
    ("  SQLite insert (rows, indexes)", "flashgate::store::row::Row::execute"),
    ("  SQLite commit (WAL write, fsync)", "vdbeCommit"),
    ("  SQLite WAL checkpoint", "sqlite3WalDefaultHook"),
    ("socket writes (responses; kernel loopback TCP)", "poll_write_vectored"),
    ("socket reads", "recv_with_flags"),
    ("HTTP request parsing (hyper)", "Http1Transaction>::parse"),
    ("request handling (router::dispatch)", "flashgate::router::dispatch"),
    ("  JWT verification", "flashgate::auth::jwt::JwtVerifier::verify"),
    ("  JSON (serde_json)", "serde_json"),
    ("  reservation batching (reserver)", "flashgate::pipeline::reserver"),
    ("redis client (redis-rs)", "redis::"),
    ("epoll_wait", "epoll_wait"),
    ("futex (thread wake-ups)", "futex"),
    ("scheduler (context switches)", "finish_task_switch"),
    ("allocator (mimalloc)", "mi_"),
    ("Redis: script calls (EVALSHA)", "evalGenericCommand"),
    ("Redis: dict lookups", "dictFind"),
]


def main(path):
    total = 0
    threads = collections.Counter()
    groups = collections.Counter()
    leaves = collections.Counter()
    with open(path) as folded:
        for line in folded:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = stack.split(";")
            threads[frames[0]] += n
            leaves[frames[-1]] += n
            for name, pattern in GROUPS:
                if any(pattern in f for f in frames):
                    groups[name] += n
    if not total:
        print("no samples")
        return
    share = lambda n: f"{100 * n / total:5.1f}%"
    print(f"samples: {total}\n\nby thread")
    for name, n in threads.most_common(8):
        print(f"  {share(n)} {name}")
    print("\ninclusive (a frame and all it called)")
    for name, _ in GROUPS:
        if groups[name]:
            print(f"  {share(groups[name])} {name}")
    print("\nself (the frame itself)")
    for name, n in leaves.most_common(15):
        print(f"  {share(n)} {name[:120]}")


if __name__ == "__main__":
    main(sys.argv[1])
