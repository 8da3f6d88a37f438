#!/usr/bin/env python3
"""The node's Grafana dashboard and a picture of it from a real run.

One list of panels (PANELS) is the source of both:

  metrics-dashboard.py dashboard [--out testnet/grafana/infera-dashboard.json]
      writes the Grafana dashboard (Prometheus queries).

  metrics-dashboard.py render --binary target/debug/infera [--seconds 70]
                             [--network] [--out testnet/grafana/dashboard.png]
                             [--samples FILE]
      starts `infera node --dev --metrics` (with --network: two authorities
      of the testnet rules, then a third with --metrics 10 blocks behind them,
      and a dev node that only signs the transactions sent to it), uploads
      the demo model, sends transfers, inferences (in blocks and by
      infera_dryRun), RPC reads and a few refused transactions for --seconds
      while scraping /metrics every 2 s, then draws every panel from the
      scraped samples (the same queries, evaluated here: rates and quantiles
      over 10 s windows). Needs matplotlib (pip install matplotlib); nothing
      else in the repo does.

  metrics-dashboard.py draw --samples FILE [--out PNG]
      draws again from samples saved by `render --samples FILE`.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DASHBOARD = os.path.join(REPO, "testnet/grafana/infera-dashboard.json")
DEFAULT_PNG = os.path.join(REPO, "testnet/grafana/dashboard.png")
MODEL = os.path.join(REPO, "kernels/models/digits/digits.infera")
# The first Hardhat/Anvil dev key: funded on the dev chain, public knowledge.
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
INFERENCE_ADDRESS = "0x00000000000000000000000000000000000a1002"
SCRAPE_INTERVAL_S = 2.0
WINDOW_S = 10.0


def gauge(metric, by=(), legend=None):
    return {"kind": "gauge", "metric": metric, "by": list(by), "legend": legend}


def rate(metric, by=(), legend=None):
    return {"kind": "rate", "metric": metric, "by": list(by), "legend": legend}


def p95(metric, by=(), legend=None):
    return {"kind": "p95", "metric": metric, "by": list(by), "legend": legend}


# (row, title, Grafana unit, targets)
PANELS = [
    ("Chain", "Head block", "none", [gauge("infera_chain_head_number", legend="head")]),
    ("Chain", "Head age", "s", [gauge("infera_chain_head_age_seconds", legend="age")]),
    ("Chain", "Seal time p95 by phase", "s",
     [p95("infera_chain_seal_phase_seconds", ["phase"])]),
    ("Chain", "Import time p95 by phase", "s",
     [p95("infera_chain_import_phase_seconds", ["phase"])]),
    ("Chain", "Gas per second", "none", [rate("infera_chain_gas_used_total", ["source"])]),
    ("Chain", "Blocks and transactions per second", "ops",
     [rate("infera_chain_blocks_total", ["source"], "blocks {source}"),
      rate("infera_chain_transactions_total", ["source"], "txs {source}")]),
    ("Pool", "Pool size", "none",
     [gauge("infera_txpool_pending", legend="pending"),
      gauge("infera_txpool_queued", legend="queued")]),
    ("Pool", "Admitted and rejected per second", "ops",
     [rate("infera_txpool_admitted_total", legend="admitted"),
      rate("infera_txpool_rejected_total", ["reason"], "rejected: {reason}")]),
    ("Network", "Peers", "none", [gauge("infera_network_peers", legend="peers")]),
    ("Network", "Gossip messages per second", "ops",
     [rate("infera_network_gossip_messages_total", ["direction", "topic"], "{direction} {topic}")]),
    ("Network", "Bans per second by reason", "ops",
     [rate("infera_network_peer_bans_total", ["reason"])]),
    ("Network", "Sync blocks per second", "ops",
     [rate("infera_network_sync_blocks_total", legend="range sync")]),
    ("RPC", "Requests per second by method", "reqps",
     [rate("infera_rpc_requests_total", ["method"])]),
    ("RPC", "Errors per second by method", "reqps",
     [rate("infera_rpc_errors_total", ["method"])]),
    ("RPC", "Latency p95 by method", "s", [p95("infera_rpc_request_seconds", ["method"])]),
    ("RPC", "Open connections", "none", [gauge("infera_rpc_connections", legend="open")]),
    ("Inference", "Inferences per second by device", "ops",
     [rate("infera_inference_calls_total", ["device"])]),
    ("Inference", "Inference latency p95 by device", "s",
     [p95("infera_inference_seconds", ["device"])]),
    ("Inference", "Inference gas per second by model", "none",
     [rate("infera_inference_gas_total", ["model"])]),
    ("Inference", "Model cache", "ops",
     [rate("infera_inference_model_cache_hits_total", legend="hits/s"),
      rate("infera_inference_model_cache_misses_total", legend="misses/s")]),
    ("Inference", "Model cache bytes", "bytes",
     [gauge("infera_inference_model_cache_bytes", legend="decoded bytes")]),
    ("Inference", "GPU fallbacks and mismatches per second", "ops",
     [rate("infera_inference_gpu_fallbacks_total", legend="fallbacks"),
      rate("infera_inference_gpu_mismatches_total", legend="mismatches")]),
    ("Storage", "Database size", "bytes",
     [gauge("infera_storage_db_file_bytes", legend="data file"),
      gauge("infera_storage_db_used_bytes", legend="tables")]),
    ("Storage", "Pages written per commit p95", "none",
     [p95("infera_storage_commit_pages", ["source"])]),
]


# ---------------------------------------------------------------- Grafana

def promql(target):
    by = ", ".join(target["by"])
    metric = target["metric"]
    if target["kind"] == "gauge":
        return f"sum by ({by}) ({metric})" if by else metric
    if target["kind"] == "rate":
        inner = f"rate({metric}[$__rate_interval])"
        return f"sum by ({by}) ({inner})" if by else f"sum({inner})"
    le = ", ".join(["le"] + target["by"])
    return f"histogram_quantile(0.95, sum by ({le}) (rate({metric}_bucket[$__rate_interval])))"


def grafana_legend(target):
    if target["legend"]:
        return re.sub(r"\{(\w+)\}", r"{{\1}}", target["legend"])
    return " ".join("{{%s}}" % b for b in target["by"]) or "__auto"


def dashboard():
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    panels, y, row, x, next_id = [], 0, None, 0, 1
    for (group, title, unit, targets) in PANELS:
        if group != row:
            if row is not None:
                y += 8
            panels.append({"type": "row", "title": group, "id": next_id, "collapsed": False,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
            next_id += 1
            y += 1
            row, x = group, 0
        elif x >= 24:
            x, y = 0, y + 8
        panels.append({
            "type": "timeseries",
            "title": title,
            "id": next_id,
            "datasource": datasource,
            "gridPos": {"h": 8, "w": 6, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 10}}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"}},
            "targets": [{"refId": chr(ord("A") + i), "datasource": datasource,
                         "expr": promql(t), "legendFormat": grafana_legend(t)}
                        for i, t in enumerate(targets)],
        })
        next_id += 1
        x += 6
    return {
        "title": "infera node",
        "uid": "infera-node",
        "description": "Generated by scripts/metrics-dashboard.py from its PANELS list; series are defined in crates/metrics.",
        "tags": ["infera"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0,
        }]},
        "panels": panels,
    }


# ---------------------------------------------------------------- scraping

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(3) or ""))
        out.append([m.group(1), labels, float(m.group(4))])
    return out


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return parse(r.read().decode())


# ---------------------------------------------------------------- evaluation

def series_of(samples, metric):
    """{labels tuple: value} of one scrape."""
    return {tuple(sorted(l.items())): v for (n, l, v) in samples if n == metric}


def group_key(labels, by):
    d = dict(labels)
    return tuple(d.get(b, "") for b in by)


def legend_of(target, key):
    values = dict(zip(target["by"], key))
    if target["legend"]:
        return target["legend"].format(**values)
    return " ".join(key) or target["metric"]


def shorten(text):
    # Model ids are 66 characters: the head says which.
    return re.sub(r"0x([0-9a-f]{8})[0-9a-f]{56}", r"0x\1…", text)


def window_pairs(scrapes):
    """(time, earlier scrape, later scrape) pairs WINDOW_S apart."""
    for i, (t, s) in enumerate(scrapes):
        j = i
        while j > 0 and t - scrapes[j - 1][0] <= WINDOW_S + 0.5:
            j -= 1
        if j < i:
            yield t, scrapes[j], (t, s)


def evaluate(target, scrapes):
    """{legend: ([t], [v])} for one target over the run."""
    lines = {}

    def add(key, t, v):
        xs, ys = lines.setdefault(legend_of(target, key), ([], []))
        xs.append(t)
        ys.append(v)

    metric, by = target["metric"], target["by"]
    if target["kind"] == "gauge":
        for t, s in scrapes:
            sums = {}
            for labels, v in series_of(s, metric).items():
                k = group_key(labels, by)
                sums[k] = sums.get(k, 0.0) + v
            for k, v in sums.items():
                add(k, t, v)
    elif target["kind"] == "rate":
        for t, (t0, s0), (t1, s1) in window_pairs(scrapes):
            before, after, sums = series_of(s0, metric), series_of(s1, metric), {}
            for labels, v in after.items():
                delta = v - before.get(labels, 0.0)
                k = group_key(labels, by)
                sums[k] = sums.get(k, 0.0) + max(delta, 0.0) / (t1 - t0)
            for k, v in sums.items():
                add(k, t, v)
    else:
        for t, (t0, s0), (t1, s1) in window_pairs(scrapes):
            before, after = series_of(s0, metric + "_bucket"), series_of(s1, metric + "_bucket")
            groups = {}
            for labels, v in after.items():
                d = dict(labels)
                le = float("inf") if d["le"] == "+Inf" else float(d["le"])
                k = group_key(labels, by)
                buckets = groups.setdefault(k, {})
                buckets[le] = buckets.get(le, 0.0) + v - before.get(labels, 0.0)
            for k, buckets in groups.items():
                q = quantile(0.95, sorted(buckets.items()))
                if q is not None:
                    add(k, t, q)
    return lines


def quantile(q, buckets):
    """Prometheus' histogram_quantile over cumulative (upper bound, count) pairs."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower_bound
            if count == lower_count:
                return upper
            return lower_bound + (upper - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = upper, count
    return lower_bound


# ---------------------------------------------------------------- drawing

def scale(unit, values):
    peak = max((abs(v) for v in values), default=0.0)
    if unit == "s":
        if peak < 1e-3:
            return 1e6, "µs"
        if peak < 1:
            return 1e3, "ms"
        return 1, "s"
    if unit == "bytes":
        for factor, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if peak >= factor:
                return 1 / factor, name
        return 1, "B"
    if peak >= 1e6:
        return 1e-6, "M"
    if peak >= 1e4:
        return 1e-3, "k"
    return 1, ""


def draw(scrapes, out, what):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = scrapes[0][0]
    scrapes = [(t - start, s) for t, s in scrapes]
    cols = 4
    rows = (len(PANELS) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(20, 2.9 * rows), dpi=48)
    fig.patch.set_facecolor("#111217")
    for ax, (group, title, unit, targets) in zip(axes.flat, PANELS):
        ax.set_facecolor("#181b1f")
        for spine in ax.spines.values():
            spine.set_color("#333")
        ax.tick_params(colors="#ccc", labelsize=10)
        lines = {}
        for target in targets:
            lines.update(evaluate(target, scrapes))
        factor, suffix = scale(unit, [v for _, ys in lines.values() for v in ys])
        for name, (xs, ys) in sorted(lines.items())[:8]:
            ax.plot(xs, [v * factor for v in ys], linewidth=1.6, label=shorten(name))
        label = f"{group} · {title}" + (f" ({suffix})" if suffix else "")
        ax.set_title(label, color="#eee", fontsize=12, loc="left")
        ax.set_xlim(0, scrapes[-1][0])
        ax.grid(color="#2a2d33", linewidth=0.6)
        if lines:
            ax.legend(fontsize=8, loc="upper left", facecolor="#181b1f", edgecolor="#333",
                      labelcolor="#ddd", ncol=2)
        else:
            ax.text(0.5, 0.5, "no data", color="#777", ha="center", va="center",
                    transform=ax.transAxes, fontsize=12)
    for ax in list(axes.flat)[len(PANELS):]:
        ax.set_visible(False)
    seconds = scrapes[-1][0]
    fig.suptitle(f"{what}: {seconds:.0f} s of transfers, inferences and RPC "
                 f"(scraped every {SCRAPE_INTERVAL_S:.0f} s; rates and p95 over {WINDOW_S:.0f} s; "
                 "x axis: seconds)", color="#eee", fontsize=14)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, facecolor=fig.get_facecolor(), dpi=48)
    print(f"wrote {out} ({os.path.getsize(out) // 1024} KiB)")


# ---------------------------------------------------------------- the run

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rpc:
    def __init__(self, url):
        self.url, self.id = url, 0

    def call(self, method, params):
        self.id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params})
        req = urllib.request.Request(self.url, body.encode(), {"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.loads(r.read())
        return answer.get("result"), answer.get("error")


def abi_infer(selector, model_id, data):
    # infer(bytes32 id, bytes input): id, offset 0x40, length, padded bytes.
    word = lambda n: n.to_bytes(32, "big")
    padded = data + b"\0" * (-len(data) % 32)
    return "0x" + selector + (bytes.fromhex(model_id[2:]) + word(64) + word(len(data)) + padded).hex()


class Node:
    """One `infera node` process on loopback, its log in `workdir`."""

    def __init__(self, binary, workdir, name, args, env=None, metrics=None):
        self.http = free_port()
        self.datadir = os.path.join(workdir, name)
        self.metrics = metrics
        argv = [binary, "node", "--datadir", self.datadir, "--http.port", str(self.http),
                "--inference.device", "cpu", *args]
        if metrics:
            argv += ["--metrics", f"127.0.0.1:{metrics}"]
        self.log = open(os.path.join(workdir, f"{name}.log"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.rpc = Rpc(f"http://127.0.0.1:{self.http}")
        for _ in range(300):
            try:
                if self.rpc.call("eth_chainId", [])[0]:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        sys.exit(f"{name} did not answer eth_chainId:\n" + open(self.log.name).read()[-2000:])

    def enode(self):
        for _ in range(100):
            path = os.path.join(self.datadir, "p2p-addresses")
            if os.path.exists(path):
                return open(path).read().split()[0]
            time.sleep(0.1)
        sys.exit("no p2p address")

    def head(self):
        return int(self.rpc.call("eth_blockNumber", [])[0], 16)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


# The testnet's authorities (anvil's accounts #7, #8, #9).
AUTHORITY_KEYS = [
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]


def run(binary, seconds, network):
    workdir = tempfile.mkdtemp(prefix="infera-metrics-")
    port = free_port()
    nodes = []
    try:
        if network:
            # The testnet rules with the dev chain id (so the dev node signs
            # for it) and a one-second period.
            genesis = json.load(open(os.path.join(REPO, "genesis/testnet.json")))
            genesis["config"]["chainId"] = 6174
            genesis["config"]["clique"]["period"] = 1
            genesis["timestamp"] = hex(int(time.time()))
            path = os.path.join(workdir, "genesis.json")
            json.dump(genesis, open(path, "w"))
            authority = lambda i, boot, **kw: Node(
                binary, workdir, f"authority{i}",
                ["--chain", path, "--http", "--p2p.addr", "127.0.0.1", "--port", str(free_port()),
                 "--authority.key", "env:KEY", *(["--bootnodes", ",".join(boot)] if boot else [])],
                env={"KEY": AUTHORITY_KEYS[i]}, **kw)
            signer = Node(binary, workdir, "signer", ["--dev"])
            nodes.append(signer)
            first = authority(0, [])
            nodes.append(first)
            second = authority(1, [first.enode()])
            nodes.append(second)
            # The scraped node starts behind: it catches up by range sync.
            while second.head() < 10:
                time.sleep(0.2)
            node = authority(2, [first.enode(), second.enode()], metrics=port)
            nodes.append(node)
            nonces = {}

            def send(tx):
                sender = tx["from"]
                if sender not in nonces:
                    nonces[sender] = int(node.rpc.call(
                        "eth_getTransactionCount", [sender, "pending"])[0], 16)
                tx = {**tx, "nonce": hex(nonces[sender]), "gas": tx.get("gas", hex(21000)),
                      "maxFeePerGas": hex(10**10), "maxPriorityFeePerGas": hex(10**9),
                      "chainId": hex(6174)}
                raw, err = signer.rpc.call("eth_signTransaction", [tx])
                if err:
                    sys.exit(f"eth_signTransaction: {err}")
                if not node.rpc.call("eth_sendRawTransaction", [raw])[1]:
                    nonces[sender] += 1
        else:
            node = Node(binary, workdir, "node", ["--dev", "--dev.block-time", "1"], metrics=port)
            nodes.append(node)
            signer = node

            def send(tx):
                node.rpc.call("eth_sendTransaction", [tx])

        scrapes = load(binary, node, signer, send, f"http://127.0.0.1:{port}/metrics", seconds)
    finally:
        for n in reversed(nodes):
            n.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return scrapes


def load(binary, node, signer, send, url, seconds):
    upload = subprocess.run(
        [binary, "model", "upload", MODEL, "--rpc", node.rpc.url, "--key", "env:INFERA_KEY"],
        env={**os.environ, "INFERA_KEY": DEV_KEY}, capture_output=True, text=True)
    if upload.returncode != 0:
        sys.exit(f"model upload failed:\n{upload.stderr}")
    model_id = upload.stdout.strip()
    # The node samples its gauges every second: let it see the upload's blocks.
    time.sleep(1.5)
    rpc = node.rpc
    selector = rpc.call("web3_sha3", ["0x" + b"infer(bytes32,bytes)".hex()])[0][2:10]
    # The upload's key is the first account: the others send.
    accounts = signer.rpc.call("eth_accounts", [])[0][1:]
    rng = random.Random(7)
    scrapes = []
    begin = time.time()
    next_scrape = begin
    step = 0
    while time.time() - begin < seconds:
        now = time.time()
        if now >= next_scrape:
            scrapes.append((now, scrape(url)))
            next_scrape += SCRAPE_INTERVAL_S
        step += 1
        sender = rng.choice(accounts)
        # A burst of transfers every other second, reads all the time.
        if (step // 10) % 2 == 0:
            send({"from": sender, "to": rng.choice(accounts), "value": hex(rng.randrange(1, 10**15))})
        if step % 6 == 0:
            image = bytes(rng.randrange(256) for _ in range(64))
            send({"from": sender, "to": INFERENCE_ADDRESS,
                  "data": abi_infer(selector, model_id, image), "gas": hex(1_000_000)})
        if step % 4 == 0:
            image = bytes(rng.randrange(256) for _ in range(64))
            rpc.call("infera_dryRun", [model_id, "0x" + image.hex()])
        if step % 25 == 0:
            rpc.call("eth_sendRawTransaction", ["0x02deadbeef"])  # refused: malformed
        rpc.call("eth_blockNumber", [])
        rpc.call("eth_getBalance", [sender, "latest"])
        if step % 3 == 0:
            rpc.call("eth_getBlockByNumber", ["latest", True])
        time.sleep(0.1)
    scrapes.append((time.time(), scrape(url)))
    return scrapes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dashboard")
    d.add_argument("--out", default=DEFAULT_DASHBOARD)
    r = sub.add_parser("render")
    r.add_argument("--binary", default=os.path.join(REPO, "target/debug/infera"))
    r.add_argument("--seconds", type=float, default=70)
    r.add_argument("--out", default=DEFAULT_PNG)
    r.add_argument("--samples", help="also save the scraped samples here (JSON)")
    r.add_argument("--network", action="store_true",
                   help="scrape an authority of a three-authority testnet instead of a dev node")
    w = sub.add_parser("draw")
    w.add_argument("--samples", required=True)
    w.add_argument("--out", default=DEFAULT_PNG)
    args = parser.parse_args()
    if args.command == "dashboard":
        with open(args.out, "w") as f:
            json.dump(dashboard(), f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")
    elif args.command == "render":
        scrapes = run(args.binary, args.seconds, args.network)
        what = ("authority 3 of a three-authority testnet (started 10 blocks behind)"
                if args.network else "infera node --dev")
        if args.samples:
            with open(args.samples, "w") as f:
                json.dump({"what": what, "scrapes": scrapes}, f)
        draw(scrapes, args.out, what)
    else:
        with open(args.samples) as f:
            saved = json.load(f)
        draw(saved["scrapes"], args.out, saved["what"])


if __name__ == "__main__":
    sys.exit(main())
