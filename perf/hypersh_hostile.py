#!/usr/bin/env python3
"""A hostile Hyper.sh API for the informer example (issue 25, items 1 and 2).

A fake API on 127.0.0.1 (plain HTTP; signatures are not checked) answers
`GET /containers/json` and upgrades `/events/ws` to a websocket. For ATTACK_SECONDS it
runs one attack, then behaves: the list is [A, B] (B is new), the stream sends one event
for each and answers pings. Usage:

    hypersh_hostile.py INFORMER_BINARY ATTACK [ATTACK_SECONDS]

ATTACK is one of
  list-dribble   the list sends one byte a second while the stream sends ~1 MiB valid
                 events about A, as fast as the informer reads them
  fetch-dribble  the list is [A] at once; the stream sends `create` of C, then ~1 MiB
                 events about C; the fetch of C (a list filtered by id) dribbles
  big-list       an endless list of valid containers of ~1 MiB each, 86 000 short labels
  large-list     an endless list of valid containers of ~1 MiB each, a long `Command`
  small-list     an endless list of small valid containers

INFORMER_BINARY is the `informer` example (`cargo build --release --example informer`),
run as `informer --addr http://127.0.0.1:PORT --access-key ak --secret-key sk`. Prints the informer's peak
RSS (VmHWM) during the attack, how long after the attack ended the informer printed B (or
C: time to recover), its RSS then and 30 s after the attack ended, and its last status
line (stderr). With TRIM_PROBE=1 it then calls glibc's `malloc_trim(0)` in the informer
through gdb and prints the RSS after: how much of what was kept was free memory the
allocator held. Loopback only.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

A = "aaaa" + "0" * 60
B = "bbbb" + "0" * 60
C = "cccc" + "0" * 60
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def container(cid, extra=""):
    return (
        f'{{"Id":"{cid}","Names":["/n{cid[:4]}"],"Image":"img:1","ImageID":"sha256:65",'
        f'"Command":"true","Created":1796462791,"Labels":{{}},"State":"running",'
        f'"Status":"Up"{extra}}}'
    )


def event(cid, action="start", pad=0):
    attrs = f'"image":"img:1","name":"n{cid[:4]}"'
    if pad:
        attrs += f',"pad":"{"x" * pad}"'
    return (
        f'{{"status":"{action}","id":"{cid}","from":"img:1","Type":"container",'
        f'"Action":"{action}","Actor":{{"ID":"{cid}","Attributes":{{{attrs}}}}},'
        f'"time":1796462788,"timeNano":1796462788031704372}}'
    )


class Fake:
    def __init__(self, attack):
        self.attack = attack
        self.lock = threading.Lock()
        self.active = True

    def attacking(self):
        with self.lock:
            return self.active


def reply(body, status="200 OK"):
    body = body.encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def chunk(data):
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def serve(conn, fake):
    with conn:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                return
            head += data
        lines = head.split(b"\r\n")
        target = lines[0].split(b" ")[1].decode()
        path, _, query = target.partition("?")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.decode(errors="replace").partition(":")
            headers[k.strip().lower()] = v.strip()
        try:
            if path.endswith("/events/ws"):
                websocket(conn, headers, fake)
            elif path.endswith("/containers/json"):
                filters = urllib.parse.parse_qs(query).get("filters", ["{}"])[0]
                ids = json.loads(filters).get("id", [])
                if ids:
                    fetch(conn, ids, fake)
                else:
                    listing(conn, fake)
            else:
                conn.sendall(reply('{"message":"page not found"}', "404 Not Found"))
        except OSError:
            pass


def listing(conn, fake):
    attack = fake.attack if fake.attacking() else None
    if attack == "list-dribble":
        body = ("[" + container(A) + "]").encode()
        conn.sendall(CHUNKED)
        i = 0
        while fake.attacking():
            if i < len(body) - 1:
                conn.sendall(chunk(body[i : i + 1]))
                i += 1
            time.sleep(1)
        conn.sendall(chunk(body[i:]) + b"0\r\n\r\n")
    elif attack == "big-list":
        conn.sendall(CHUNKED + chunk(b"["))
        labels = "{" + ",".join(f'"{i:x}":""' for i in range(86_000)) + "}"
        n = 0
        while fake.attacking():
            item = container(f"{n:064x}").replace('"Labels":{}', f'"Labels":{labels}')
            conn.sendall(chunk((item + ",").encode()))
            n += 1
    elif attack == "large-list":
        conn.sendall(CHUNKED + chunk(b"["))
        command = "x" * (1000 * 1024)
        n = 0
        while fake.attacking():
            item = container(f"{n:064x}").replace('"Command":"true"', f'"Command":"{command}"')
            conn.sendall(chunk((item + ",").encode()))
            n += 1
    elif attack == "small-list":
        conn.sendall(CHUNKED + chunk(b"["))
        n = 0
        while fake.attacking():
            batch = ",".join(container(f"{m:064x}") for m in range(n, n + 1000)) + ","
            conn.sendall(chunk(batch.encode()))
            n += 1000
    else:
        ids = [A] if attack else [A, B] + ([C] if fake.attack == "fetch-dribble" else [])
        conn.sendall(reply("[" + ",".join(container(i) for i in ids) + "]"))


def fetch(conn, ids, fake):
    if fake.attacking() and fake.attack == "fetch-dribble":
        conn.sendall(CHUNKED)
        body = ("[" + container(C) + "]").encode()
        i = 0
        while fake.attacking():
            if i < len(body) - 1:
                conn.sendall(chunk(body[i : i + 1]))
                i += 1
            time.sleep(1)
        conn.sendall(chunk(body[i:]) + b"0\r\n\r\n")
        return
    known = [A, B] + ([C] if fake.attack == "fetch-dribble" else [])
    found = [i for i in ids if i in known]
    conn.sendall(reply("[" + ",".join(container(i) for i in found) + "]"))


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def read_frames(conn, send_lock):
    """Answers the client's pings; returns when the connection ends."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            data = conn.recv(65536)
            if not data:
                raise OSError("closed")
            buf += data
        out, buf = buf[:n], buf[n:]
        return out

    try:
        while True:
            b0, b1 = need(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", need(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", need(8))
            mask = need(4) if b1 & 0x80 else b"\0\0\0\0"
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(need(n)))
            if b0 & 0x0F == 0x9:
                with send_lock:
                    conn.sendall(frame(0xA, payload))
            elif b0 & 0x0F == 0x8:
                return
    except OSError:
        return


def websocket(conn, headers, fake):
    key = headers.get("sec-websocket-key", "").encode()
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    conn.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()
    )
    send_lock = threading.Lock()
    reader = threading.Thread(target=read_frames, args=(conn, send_lock), daemon=True)
    reader.start()
    attack = fake.attack
    if fake.attacking() and attack in ("list-dribble", "fetch-dribble"):
        about = A if attack == "list-dribble" else C
        if attack == "fetch-dribble":
            with send_lock:
                conn.sendall(frame(0x1, event(C, "create").encode()))
        large = [frame(0x1, event(about, a, 1000 * 1024).encode()) for a in ("stop", "start")]
        n = 0
        while fake.attacking() and reader.is_alive():
            with send_lock:
                conn.sendall(large[n % 2])
            n += 1
    if not fake.attacking():
        with send_lock:
            for cid in (A, B):
                conn.sendall(frame(0x1, event(cid).encode()))
    reader.join()


def status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main(binary, attack, attack_seconds=30.0):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    fake = Fake(attack)

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn, fake), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    watch_for = "ncccc" if attack == "fetch-dribble" else "nbbbb"
    proc = subprocess.Popen(
        [binary, "--addr", f"http://127.0.0.1:{port}", "--access-key", "ak",
         "--secret-key", "sk", "--run-for", str(attack_seconds + 120)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn")),
    )
    seen = []
    last_err = []

    def read_stdout():
        for line in proc.stdout:
            if watch_for in line and "ADDED" in line and not seen:
                seen.append(time.monotonic())

    def read_stderr():
        for line in proc.stderr:
            line = line.strip()
            if line:
                last_err.append(line[-300:])
                del last_err[:-int(os.environ.get("SHOW_STDERR", "5"))]

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        time.sleep(attack_seconds)
        peak_attack = status(proc.pid, "VmHWM")
        rss_attack_end = status(proc.pid, "VmRSS")
        with fake.lock:
            fake.active = False
        ended = time.monotonic()
        deadline = ended + 90
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        recovered = f"{seen[0] - ended:.1f} s" if seen else "not within 90 s"
        time.sleep(max(0.0, ended + 30 - time.monotonic()))
        rss_30 = status(proc.pid, "VmRSS")
        errors = [e for e in last_err if "error" in e.lower() or "WARN" in e]
        print(
            f"{attack}: attack {attack_seconds:.0f} s; peak RSS {peak_attack / 1024:.0f} MiB "
            f"(RSS {rss_attack_end / 1024:.0f} MiB as it ended); recovered {recovered} after; "
            f"RSS 30 s after {rss_30 / 1024:.0f} MiB"
        )
        for e in errors[-3:]:
            print(f"  stderr: {e}")
        if os.environ.get("SHOW_STDERR"):
            print("\n".join(last_err))
        if os.environ.get("TRIM_PROBE"):
            # Is what is kept free memory the allocator holds? Ask glibc to give it back.
            subprocess.run(
                ["gdb", "-p", str(proc.pid), "-batch", "-ex", "call (int) malloc_trim(0)"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
            print(f"  after malloc_trim(0) from gdb: RSS {status(proc.pid, 'VmRSS') / 1024:.0f} MiB")
    finally:
        proc.kill()
        proc.wait()
        listener.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *[float(x) for x in sys.argv[3:]])
