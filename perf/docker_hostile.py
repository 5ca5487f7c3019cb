#!/usr/bin/env python3
"""A hostile Docker daemon for the informer example (issue 25, items 1 and 3).

A fake dockerd on a private Unix socket answers /_ping, /version and the container list
like an engine, and for ATTACK_SECONDS dribbles every /events response: one byte every
5 s, never a newline. Then the attack ends: a second container appears, and /events
behaves (an event for each container, then silence). Usage:

    docker_hostile.py INFORMER_BINARY [ATTACK_SECONDS] [ATTACK]

ATTACK is `dribble` (the default, above), `large-lines` (/events sends valid lines of
about 1 MiB about A as fast as they are read while the list stalls) or
`large-lines-fetch` (the list answers; /events sends C's `create`, then ~1 MiB lines
about C, while the fetch of C stalls). For these two the informer's RSS 30 s after the
attack ended is printed too.

INFORMER_BINARY is the `informer` example (`cargo build --release --example informer`),
run as `informer --docker unix:///PATH`. Prints, from the daemon's side, when each
dribbled /events connection was closed by the client (how long the stuck stream went
unnoticed), the /_ping and list calls during the attack, how long after the attack the
informer printed the new container (time to recover), and the informer's peak RSS
(VmHWM). Loopback only; everything lives in a temporary directory.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

A = "aaaa0a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487"
B = "bbbb0a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487"
C = "cccc0a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487"


def container(cid):
    return (
        f'{{"Id":"{cid}","Names":["/n{cid[:4]}"],"Image":"img:1","ImageID":"sha256:65",'
        f'"Command":"true","Created":1796462791,"Labels":{{}},"State":"running","Status":"Up"}}'
    )


def event(cid, action="start", pad=0):
    extra = f',"pad":"{"x" * pad}"' if pad else ""
    return (
        f'{{"status":"{action}","id":"{cid}","from":"img:1","Type":"container","Action":"{action}",'
        f'"Actor":{{"ID":"{cid}","Attributes":{{"image":"img:1","name":"n{cid[:4]}"{extra}}}}},'
        f'"scope":"local","time":1796462788,"timeNano":1796462788031704372}}'
    )


class Fake:
    def __init__(self, mode="dribble"):
        self.mode = mode
        self.lock = threading.Lock()
        self.attack = True
        self.containers = [A]
        self.t0 = time.monotonic()
        self.log = []  # (seconds since start, what)

    def note(self, what):
        with self.lock:
            self.log.append((time.monotonic() - self.t0, what))


def reply(body, status="200 OK"):
    return (
        f"HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def chunk(data):
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def serve(conn, fake):
    with conn:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(1)
            if not data:
                return
            head += data
        target = head.split(b" ")[1].decode()
        path = target.split("?")[0]
        try:
            if path == "/_ping":
                fake.note("ping")
                conn.sendall(reply("OK"))
            elif path == "/version":
                conn.sendall(reply('{"ApiVersion":"1.41"}'))
            elif path.endswith("/containers/json"):
                fetch = "%22id%22" in target
                stalls = {"large-lines": not fetch, "large-lines-fetch": fetch}
                while stalls.get(fake.mode) and fake.attack:
                    time.sleep(0.05)
                with fake.lock:
                    ids = list(fake.containers)
                if fetch:
                    ids = [i for i in ids if i in target]
                fake.note(f"list of {len(ids)}")
                conn.sendall(reply("[" + ",".join(container(i) for i in ids) + "]"))
            elif path.endswith("/events"):
                events(conn, fake)
            else:
                conn.sendall(reply('{"message":"page not found"}', "404 Not Found"))
        except OSError:
            pass


def events(conn, fake):
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    with fake.lock:
        attack = fake.attack
        ids = list(fake.containers)
    if attack and fake.mode != "dribble":
        about = A if fake.mode == "large-lines" else C
        if about == C:
            conn.sendall(chunk((event(C, "create") + "\n").encode()))
        lines = [chunk((event(about, a, 1000 * 1024) + "\n").encode()) for a in ("stop", "start")]
        n = 0
        while fake.attack:
            conn.sendall(lines[n % 2])
            n += 1
        attack = False
        with fake.lock:
            ids = list(fake.containers)
    if not attack:
        fake.note("events: healthy")
        for cid in ids:
            conn.sendall(chunk((event(cid) + "\n").encode()))
        while conn.recv(64):
            pass
        return
    opened = time.monotonic()
    fake.note("events: dribbling")
    line = event(A).encode()
    i = 0
    try:
        while True:
            conn.sendall(chunk(line[i % len(line) : i % len(line) + 1]))
            i += 1
            # A closed peer shows as EOF on read; wait up to 5 s for it.
            conn.settimeout(5.0)
            try:
                if conn.recv(64) == b"":
                    break
            except socket.timeout:
                pass
    except OSError:
        pass
    fake.note(
        f"events: dribbled connection closed by the client after "
        f"{time.monotonic() - opened:.1f} s ({i} bytes sent)"
    )


def status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main(binary, attack_seconds=40.0, mode="dribble"):
    tmp = tempfile.mkdtemp(prefix=f"dh-{os.getpid()}-")
    path = os.path.join(tmp, "d.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(64)
    fake = Fake(mode)

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn, fake), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    proc = subprocess.Popen(
        [binary, "--docker", f"unix://{path}", "--run-for", str(attack_seconds + 30)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen_b = []

    def read_stdout():
        for line in proc.stdout:
            if ("nbbbb" in line or (mode == "large-lines-fetch" and "ncccc" in line)) and not seen_b:
                seen_b.append(time.monotonic())

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        time.sleep(attack_seconds)
        peak_attack = status(proc.pid, "VmHWM")
        with fake.lock:
            fake.attack = False
            fake.containers.append(C if mode == "large-lines-fetch" else B)
        ended = time.monotonic()
        fake.note("attack ends; a second container appears")
        deadline = ended + 25
        while not seen_b and time.monotonic() < deadline:
            time.sleep(0.05)
        peak = status(proc.pid, "VmHWM")
        if mode != "dribble":
            time.sleep(max(0.0, ended + 30 - time.monotonic()))
            recovered = f"{seen_b[0] - ended:.2f} s" if seen_b else "not within 25 s"
            print(
                f"docker {mode}: attack {attack_seconds:.0f} s; informer peak RSS "
                f"{peak_attack / 1024:.0f} MiB; recovered {recovered} after; RSS 30 s after "
                f"{status(proc.pid, 'VmRSS') / 1024:.0f} MiB"
            )
            return
        with fake.lock:
            log = list(fake.log)
        for at, what in log:
            print(f"{at:7.1f} s  {what}")
        recovered = f"{seen_b[0] - ended:.2f} s" if seen_b else "not within 25 s"
        print(
            f"docker dribble: attack {attack_seconds:.0f} s; the new container reached the "
            f"informer {recovered} after the attack ended; informer VmHWM {peak} KiB"
        )
    finally:
        proc.kill()
        proc.wait()
        listener.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[2:]
    main(sys.argv[1], *[float(x) for x in args[:1]], *args[1:2])
