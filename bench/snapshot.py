#!/usr/bin/python3
"""Snapshot benchmarks: atrest put -r / get -r against tar and age, and the
cost of an incremental snapshot, as ratios measured in one run.

Datasets, made here: a PostgreSQL 15 base backup (pgbench -i -s SCALE, then
pg_basebackup; needs root for the postgres user) and a synthetic tree of
10,000 small files (512 B - 8 KiB in 500 directories).  For each, RUNS
rounds alternate the tools (median reported):

  put -r           atrest put -r --full DIR NAME (every object fsynced)
   vs tar c | age  tar cf - DIR | age -r RECIPIENT > FILE, then fsync FILE
  get -r           atrest get -r --no-sync NAME NEWDIR
   vs age -d | tar x  age -d -i KEY FILE | tar xf - -C NEWDIR
  incremental      1 % of the files rewritten (same sizes), then
                   atrest put -r DIR NAME2 --parent NAME: against put -r

The file system is flushed (untimed) before every timed command.  Prints a
markdown table and writes bench/results/snapshot-<date>.json.

Usage: bench/snapshot.py [--atrest BIN] [--dir DIR] [--runs N] [--scale S]
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
SVC = os.path.join(SRC, "tests", "service", "lib")


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def timed(cmd, env=None):
    os.sync()
    t = time.monotonic()
    subprocess.run(cmd, shell=True, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def machine(d):
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    fs = subprocess.run(["stat", "-f", "-c", "%T", d], capture_output=True,
                        text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
            "fs": fs, "openssl": subprocess.run(
                ["openssl", "version"], capture_output=True,
                text=True).stdout.strip()}


def pg_dataset(work, scale):
    """A base backup of a fresh cluster with pgbench data, owned by postgres."""
    os.chmod(work, 0o711)
    env = dict(os.environ)
    out = subprocess.run([os.path.join(SVC, "pg-up"), work], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "=" in line and not line.startswith("export"):
            k, v = line.split("=", 1)
            env[k] = v.strip("'")
    try:
        pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(pg + [env["PGBIN"] + "/pgbench", "-q", "-i", "-s",
                             str(scale), "postgres"], env=env, check=True,
                       capture_output=True)
        base = os.path.join(work, "pgbase")
        os.mkdir(base, 0o700)
        shutil.chown(base, "postgres")
        subprocess.run(pg + [env["PGBIN"] + "/pg_basebackup", "-D", base,
                             "-Fp", "-Xstream", "-c", "fast"], env=env,
                       check=True)
    finally:
        subprocess.run([os.path.join(SVC, "pg-down"), work], check=True)
    return base


def small_dataset(work):
    base = os.path.join(work, "small")
    rnd = random.Random(1)
    for i in range(10000):
        d = os.path.join(base, "d%03d" % (i % 500))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(512, 8192)))
    return base


def tree_size(d):
    files = size = 0
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files += 1
                size += os.lstat(p).st_size
    return files, size


def stored(store):
    """Bytes of the store's snapshot objects (manifests and data)."""
    total = 0
    for root, _, names in os.walk(os.path.join(store, ".atrest", "snap")):
        for n in names:
            total += os.lstat(os.path.join(root, n)).st_size
    return total


def change_one_percent(d, seed):
    """Rewrite the first 4 KiB of 1 % of the files (sizes kept)."""
    files = sorted(os.path.join(r, n) for r, _, ns in os.walk(d) for n in ns
                   if os.path.isfile(os.path.join(r, n)))
    rnd = random.Random(seed)
    picked = rnd.sample(files, max(1, len(files) // 100))
    for p in picked:
        n = min(4096, os.path.getsize(p))
        with open(p, "r+b") as f:
            f.write(rnd.randbytes(n))
    return len(picked)


def bench(name, data, work, a, runs):
    env = dict(os.environ)
    env["ATREST_STORE"] = os.path.join(work, "store-" + name)
    env["ATREST_KEY_FILE"] = os.path.join(work, "key")
    env["XDG_STATE_HOME"] = os.path.join(work, "state")
    agekey = os.path.join(work, "age.key")
    rcpt = subprocess.run(["age-keygen", "-y", agekey], capture_output=True,
                          text=True, check=True).stdout.strip()
    arch = os.path.join(work, name + ".tar.age")
    outs = os.path.join(work, "outs")
    os.mkdir(outs)
    r = {k: [] for k in ("put", "tar_age", "tar_age_nosync", "get", "age_tar",
                         "get_sync", "inc", "put_bytes", "inc_bytes")}
    files, size = tree_size(data)
    sh("%s put -r --full %s warm-%s" % (a, data, name), env=env,
       stdout=subprocess.DEVNULL)
    changed = 0
    for i in range(runs):
        pair = [("put", "%s put -r --full %s full-%d" % (a, data, i)),
                ("tar_age", "tar cf - -C %s . | age -r %s > %s && sync -f %s"
                 % (data, rcpt, arch, arch))]
        for key, cmd in (pair if i % 2 == 0 else pair[::-1]):
            before = stored(env["ATREST_STORE"])
            r[key].append(timed(cmd, env))
            if key == "put":
                r["put_bytes"].append(stored(env["ATREST_STORE"]) - before)
        r["tar_age_nosync"].append(timed(
            "tar cf - -C %s . | age -r %s > %s" % (data, rcpt, arch), env))
        # Outputs are kept until the end: ext4 is slow to make inodes just
        # after many were removed, which would tax whoever came next.
        out = os.path.join(outs, "%d-" % i)
        for key, cmd in ([("get", "%s get -r --no-sync full-%d %sget" % (a, i, out)),
                          ("age_tar", "mkdir %star && age -d -i %s %s | tar xf - -C %star"
                           % (out, agekey, arch, out))][::1 if i % 2 else -1]):
            r[key].append(timed(cmd, env))
        r["get_sync"].append(timed("%s get -r full-%d %ssync" % (a, i, out), env))
        changed = change_one_percent(data, i)
        before = stored(env["ATREST_STORE"])
        r["inc"].append(timed("%s put -r --parent full-%d %s inc-%d"
                              % (a, i, data, i), env))
        r["inc_bytes"].append(stored(env["ATREST_STORE"]) - before)
    shutil.rmtree(outs, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in r.items()}
    return {"dataset": name, "files": files, "bytes": size,
            "changed_files": changed, "runs": runs, "seconds": r,
            "median": med,
            "ratio": {"put_vs_tar_age": med["tar_age"] / med["put"],
                      "put_vs_tar_age_nosync": med["tar_age_nosync"] / med["put"],
                      "get_vs_age_tar": med["age_tar"] / med["get"],
                      "incremental_vs_full": med["inc"] / med["put"],
                      "incremental_bytes_vs_full": med["inc_bytes"] / med["put_bytes"]}}


def table(res):
    rows = ["| dataset | figure | atrest (median) | reference (median) | ratio | target | met |",
            "|---|---|---|---|---|---|---|"]
    for d in res["datasets"]:
        m, q = d["median"], d["ratio"]
        label = "%s (%d files, %.0f MiB)" % (d["dataset"], d["files"],
                                            d["bytes"] / 2**20)
        rows.append("| %s | put -r | %.3f s | %.3f s (tar c \\| age, fsync) | %.2f | ≥ 1 | %s |"
                    % (label, m["put"], m["tar_age"], q["put_vs_tar_age"],
                       "yes" if q["put_vs_tar_age"] >= 1 else "**no**"))
        rows.append("| | put -r | %.3f s | %.3f s (tar c \\| age, no fsync) | %.2f | — | — |"
                    % (m["put"], m["tar_age_nosync"], q["put_vs_tar_age_nosync"]))
        rows.append("| | get -r --no-sync | %.3f s | %.3f s (age -d \\| tar x) | %.2f | ≥ 1 | %s |"
                    % (m["get"], m["age_tar"], q["get_vs_age_tar"],
                       "yes" if q["get_vs_age_tar"] >= 1 else "**no**"))
        rows.append("| | get -r (flushed) | %.3f s | — | — | — | — |" % m["get_sync"])
        rows.append("| | incremental put -r, %d files changed | %.3f s | %.3f s (full put -r) | %.3f | < 0.10 | %s |"
                    % (d["changed_files"], m["inc"], m["put"],
                       q["incremental_vs_full"],
                       "yes" if q["incremental_vs_full"] < 0.1 else "**no**"))
        rows.append("| | incremental, bytes written | %.1f MiB | %.1f MiB (full put -r) | %.3f | < 0.10 | %s |"
                    % (m["inc_bytes"] / 2**20, m["put_bytes"] / 2**20,
                       q["incremental_bytes_vs_full"],
                       "yes" if q["incremental_bytes_vs_full"] < 0.1 else "**no**"))
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--atrest", default=os.path.join(SRC, "build", "atrest"))
    p.add_argument("--dir", default=os.environ.get("TMPDIR", "/var/tmp"))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--scale", type=int, default=20)
    p.add_argument("--only", default="pg,small")
    o = p.parse_args()
    a = os.path.abspath(o.atrest)
    work = tempfile.mkdtemp(prefix="snapbench.", dir=o.dir)
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(work), "load_before": loadavg(), "datasets": []}
    try:
        subprocess.run([a, "keygen", "-o", os.path.join(work, "key")],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["age-keygen", "-o", os.path.join(work, "age.key")],
                       check=True, capture_output=True)
        if "pg" in o.only:
            data = pg_dataset(work, o.scale)
            res["datasets"].append(bench("pg", data, work, a, o.runs))
        if "small" in o.only:
            data = small_dataset(work)
            res["datasets"].append(bench("small", data, work, a, o.runs))
    finally:
        res["load_after"] = loadavg()
        shutil.rmtree(work, ignore_errors=True)
    m = res["machine"]
    print("Machine: %s, %d cores, Linux %s, %s; on %s.  Run %s; load average "
          "before %s, after %s (a machine shared with other jobs)."
          % (m["cpu"], m["cores"], m["kernel"], m["openssl"], m["fs"],
             res["date"], " ".join(res["load_before"]),
             " ".join(res["load_after"])))
    print()
    print(table(res))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "snapshot-%s.json" %
                        res["date"].replace(":", ""))
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    print("\n(%s)" % os.path.relpath(path, SRC))


if __name__ == "__main__":
    main()
