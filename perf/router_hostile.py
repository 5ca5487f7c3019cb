#!/usr/bin/env python3
"""Hostile-client measurements of the reference router (issue 15, items 5, 7, 8; issue 25).

Starts `apirouter` (plain HTTP on 127.0.0.1, any port), runs one scenario and prints
what it measured. Loopback only. Usage:

    router_hostile.py BINARY pingflood [SECONDS]     # router RSS under a non-reading ping flood
    router_hostile.py BINARY slowloris [N] [SECONDS] # connections left after dribbling headers
    router_hostile.py BINARY slot [LIMIT_SECONDS]    # time until a non-reading watch's slot frees
    router_hostile.py BINARY replay [N]              # one captured upgrade replayed N times (16: every slot)
    router_hostile.py BINARY sigflood [N] [CAP]      # N distinct signed lists; router RSS, cache at CAP

RSS is read from /proc/PID/status (VmRSS, VmHWM). The ping flood stops early when the
router passes RSS_CAP_KIB, to protect a shared machine; the report says so.
"""

import collections
import hashlib
import hmac
import os
import re
import socket
import struct
import subprocess
import sys
import time
from datetime import datetime, timezone

AK, SK, REGION = "ak", "sk", "us-west-1"
EMPTY = hashlib.sha256(b"").hexdigest()
RSS_CAP_KIB = 1_500_000


def start(binary, *extra):
    proc = subprocess.Popen(
        [binary, "--tls", "off", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"unexpected first line: {line!r}")
    return proc, int(m.group(1))


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def sockets(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def signed_get(port, path):
    """A signed GET request head (Sign4, as protocol.md section 1), with a fresh nonce:
    the router accepts each signature once."""
    host = f"127.0.0.1:{port}"
    now = datetime.now(timezone.utc)
    date = now.strftime("%Y%m%dT%H%M%SZ")
    day = date[:8]
    p, _, q = path.partition("?")
    assert not q, "no query in this tool"
    canon_path = p.lstrip("/")
    headers = {
        "content-type": "application/json",
        "host": host,
        "x-hyper-content-sha256": EMPTY,
        "x-hyper-date": date,
        "x-hyper-nonce": os.urandom(16).hex(),
    }
    signed = ";".join(sorted(headers))
    canon_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    canonical = "\n".join(["GET", canon_path, "", canon_headers, signed, EMPTY])
    scope = f"{day}/{REGION}/hyper/hyper_request"
    to_sign = "\n".join(
        ["HYPER-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = hmac.new(("HYPER" + SK).encode(), day.encode(), hashlib.sha256).digest()
    for part in (REGION, "hyper", "hyper_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (
        f"HYPER-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={signed}, Signature={sig}"
    )
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Authorization: {auth}")
    return lines


def upgrade_head(port):
    """A signed /events/ws upgrade request head."""
    lines = signed_get(port, "/events/ws") + [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_connect(port, rcvbuf=None, head=None):
    """Opens a signed /events/ws websocket (with `head`, that very request again);
    returns (socket, status code)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(head or upgrade_head(port))
    head = b""
    s.settimeout(10)
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    m = re.match(rb"HTTP/1\.1 (\d+)", head)
    code = int(m.group(1)) if m else 0
    # A refusal's body (its JSON message) is part of the answer: read it.
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if code != 101 and length:
        body = b""
        while len(body) < int(length.group(1)):
            data = s.recv(int(length.group(1)) - len(body))
            if not data:
                break
            body += data
    s.settimeout(None)
    return s, code


def ping_frame(payload=b"x" * 125):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x89, 0x80 | len(payload)) + mask + masked


def pingflood(binary, seconds=30.0):
    proc, port = start(binary)
    try:
        s, code = ws_connect(port, rcvbuf=4096)
        assert code == 101, code
        s.setblocking(False)
        frames = ping_frame() * 64
        start_t = time.monotonic()
        sent = 0
        peak = 0
        closed_at = None
        capped = False
        next_sample = start_t
        offset = 0  # a partial send leaves the rest of `frames` to send first
        while time.monotonic() - start_t < seconds:
            try:
                n = s.send(frames[offset:])
                sent += n
                offset = (offset + n) % len(frames)
            except BlockingIOError:
                time.sleep(0.001)
            except OSError as e:
                closed_at = time.monotonic() - start_t
                print(f"pingflood: send failed: {e!r}")
                break
            if time.monotonic() >= next_sample:
                rss = status(proc.pid)["VmRSS"]
                peak = max(peak, rss)
                next_sample += 1.0
                if rss > RSS_CAP_KIB:
                    capped = True
                    break
        elapsed = time.monotonic() - start_t
        st = status(proc.pid)
        print(
            f"pingflood: {elapsed:.1f}s, {sent / 1e6:.1f} MB of pings sent, "
            f"closed by router at {closed_at if closed_at is None else round(closed_at, 1)} s, "
            f"capped={capped}, router VmRSS {st['VmRSS']} KiB, VmHWM {st['VmHWM']} KiB"
        )
    finally:
        proc.kill()
        proc.wait()


def slowloris(binary, n=150, seconds=20.0):
    proc, port = start(binary)
    try:
        base = sockets(proc.pid)
        conns = []
        for _ in range(n):
            c = socket.socket()
            c.connect(("127.0.0.1", port))
            c.setblocking(False)
            conns.append(c)
        head = b"GET /containers/json HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 4096
        start_t = time.monotonic()
        i = 0
        while time.monotonic() - start_t < seconds:
            for c in conns:
                try:
                    c.send(head[i : i + 1])
                except OSError:
                    pass
            i += 1
            time.sleep(1.0)
        open_server = sockets(proc.pid) - base
        print(
            f"slowloris: {n} connections dribbling 1 byte/s for {seconds:.0f}s; "
            f"router still holds {open_server} of them; VmRSS {status(proc.pid)['VmRSS']} KiB"
        )
    finally:
        proc.kill()
        proc.wait()


def slot(binary, limit=60.0):
    proc, port = start(
        binary, "--containers", "40", "--churn", "2000", "--max-watches-per-key", "1"
    )
    try:
        stuck, code = ws_connect(port, rcvbuf=4096)
        assert code == 101, code
        start_t = time.monotonic()
        while time.monotonic() - start_t < limit:
            s, code = ws_connect(port)
            s.close()
            if code == 101:
                print(f"slot: a new watch got 101 after {time.monotonic() - start_t:.1f} s")
                return
            time.sleep(0.25)
        print(f"slot: still 429 after {limit:.0f} s (the non-reading watch holds its slot)")
    finally:
        proc.kill()
        proc.wait()


def replay(binary, n=16):
    """Issue 25: the owner's signed upgrade, captured and sent again on `n` connections
    held open (16 is every slot of the key); then the owner's fresh upgrades."""
    proc, port = start(binary, "--containers", "40", "--churn", "200")
    try:
        head = upgrade_head(port)
        owner, code = ws_connect(port, head=head)
        assert code == 101, code
        start_t = time.monotonic()
        replays = [ws_connect(port, head=head) for _ in range(n)]
        replay_ms = (time.monotonic() - start_t) * 1000
        codes = collections.Counter(code for _, code in replays)
        # What the replayer reads in a second of churn (200 events/s) after its answer.
        time.sleep(1.0)
        leaked = 0
        for s, _ in replays:
            s.setblocking(False)
            try:
                leaked += len(s.recv(65536))
            except BlockingIOError:
                pass
        start_t = time.monotonic()
        fresh = [ws_connect(port) for _ in range(15)]
        fresh_ms = (time.monotonic() - start_t) * 1000
        fresh_codes = collections.Counter(code for _, code in fresh)
        st = status(proc.pid)
        print(
            f"replay: {n} replays of one upgrade answered {dict(codes)} in {replay_ms:.0f} ms; "
            f"the replayer read {leaked} bytes in the next second; the owner's 15 fresh "
            f"upgrades answered {dict(fresh_codes)} in {fresh_ms:.0f} ms; "
            f"router VmRSS {st['VmRSS']} KiB, VmHWM {st['VmHWM']} KiB"
        )
        for s, _ in replays + fresh + [(owner, 0)]:
            s.close()
    finally:
        proc.kill()
        proc.wait()


def sigflood(binary, n=150000, cap=None):
    """Issue 25: `n` distinct signed `GET /containers/json` on one keep-alive connection
    (as fast as this client signs); the router's RSS before and after, and the answers."""
    extra = ["--max-seen-signatures", str(cap)] if cap else []
    proc, port = start(binary, *extra)
    try:
        before = status(proc.pid)
        s = socket.create_connection(("127.0.0.1", port))
        reader = s.makefile("rb")
        codes = collections.Counter()
        start_t = time.monotonic()
        peak = 0
        for i in range(n):
            lines = signed_get(port, "/containers/json")
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            code = int(reader.readline().split()[1])
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            codes[code] += 1
            if i % 10000 == 0:
                peak = max(peak, status(proc.pid)["VmRSS"])
        elapsed = time.monotonic() - start_t
        after = status(proc.pid)
        print(
            f"sigflood: {n} distinct signed lists in {elapsed:.1f} s ({n / elapsed:.0f}/s), "
            f"cap {cap or 'default'}: answers {dict(codes)}; router VmRSS "
            f"{before['VmRSS']} -> {after['VmRSS']} KiB (sampled peak {max(peak, after['VmRSS'])}), "
            f"VmHWM {after['VmHWM']} KiB"
        )
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    binary, what, *rest = sys.argv[1:]
    {
        "pingflood": pingflood,
        "slowloris": slowloris,
        "slot": slot,
        "replay": replay,
        "sigflood": sigflood,
    }[what](
        binary, *[float(x) if "." in x else int(x) for x in rest]
    )
