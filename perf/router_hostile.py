#!/usr/bin/env python3
"""Hostile-client measurements of the reference router (issue 15, items 5, 7, 8).

Starts `apirouter` (plain HTTP on 127.0.0.1, any port), runs one scenario and prints
what it measured. Loopback only. Usage:

    router_hostile.py BINARY pingflood [SECONDS]     # router RSS under a non-reading ping flood
    router_hostile.py BINARY slowloris [N] [SECONDS] # connections left after dribbling headers
    router_hostile.py BINARY slot [LIMIT_SECONDS]    # time until a non-reading watch's slot frees

RSS is read from /proc/PID/status (VmRSS, VmHWM). The ping flood stops early when the
router passes RSS_CAP_KIB, to protect a shared machine; the report says so.
"""

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


def ws_connect(port, rcvbuf=None):
    """Opens a signed /events/ws websocket; returns (socket, status code)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    lines = signed_get(port, "/events/ws") + [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    s.settimeout(10)
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    s.settimeout(None)
    m = re.match(rb"HTTP/1\.1 (\d+)", head)
    return s, int(m.group(1)) if m else 0


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


if __name__ == "__main__":
    binary, what, *rest = sys.argv[1:]
    {"pingflood": pingflood, "slowloris": slowloris, "slot": slot}[what](
        binary, *[float(x) if "." in x else int(x) for x in rest]
    )
