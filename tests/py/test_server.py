"""`cutout s` end to end (issue #5): a real server on 127.0.0.1 (port 0, the
port read from its log), driven with http.client and raw sockets.

Tiny models for everything but one real-ISNet byte-equality case (skipped
without the real model).  No timing assertions: every wait is "until it
happens, or a generous deadline"."""
import http.client
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import numpy as np
from PIL import Image

BIN = os.environ["CUTOUT_BIN"]
MODELS = os.environ["CUTOUT_TEST_MODELS"]
REAL = os.environ.get("CUTOUT_REAL_MODELS", "")
CONF = os.environ.get("CUTOUT_CONFORMANCE", "")
TINY = os.path.join(MODELS, "tiny-64.onnx")
T = tempfile.mkdtemp(prefix="cutout-server-")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what, flush=True)
    else:
        print("ok  ", what, flush=True)


def png_bytes(w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, (h, w, 3 if mode == "RGB" else 4), dtype=np.uint8)
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG")
    return b.getvalue()


def huge_png_header(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr)
    idat = zlib.compress(b"\x00" * 10)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", crc)
            + struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
            + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))


def multipart(fields, files):
    bnd = "----cutoutTestBoundary7d1"
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (bnd, k, v)).encode())
    for k, (name, data) in files.items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n" % (bnd, k, name)).encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(("--%s--\r\n" % bnd).encode())
    return out.getvalue(), "multipart/form-data; boundary=" + bnd


class Server:
    def __init__(self, *args, env=None):
        self.log = open(os.path.join(T, "server-%d.log" % time.monotonic_ns()), "w+")
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen([BIN, "s", "-h", "127.0.0.1", "-p", "0", "--offline", *args],
                                  stdout=subprocess.DEVNULL, stderr=self.log, env=e)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.port is None:
            self.log.flush()
            with open(self.log.name) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            elif self.p.poll() is not None:
                break
            else:
                time.sleep(0.05)
        assert self.port, "server did not start: " + open(self.log.name).read()

    def text(self):
        with open(self.log.name) as f:
            return f.read()

    def req(self, method, path, body=None, headers=None, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def post(self, path, fields=None, files=None, **kw):
        body, ct = multipart(fields or {}, files or {})
        return self.req("POST", path, body, {"Content-Type": ct}, **kw)

    def metric(self, name):
        _, _, d = self.req("GET", "/metrics")
        m = re.search(r"^%s (\S+)$" % re.escape(name), d.decode(), re.M)
        return float(m.group(1)) if m else None

    def wait_ready(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.req("GET", "/readyz")[0] == 200:
                return True
            time.sleep(0.05)
        return False

    def wait_metric(self, name, pred, secs=60):
        deadline = time.time() + secs
        while time.time() < deadline:
            v = self.metric(name)
            if v is not None and pred(v):
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return -999


def cutout_i(args, data):
    inp = os.path.join(T, "in-%d" % time.monotonic_ns())
    out = inp + ".png"
    open(inp, "wb").write(data)
    r = subprocess.run([BIN, "i", "--offline", *args, inp, out], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    return open(out, "rb").read()


def raw_send(port, data, close=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(data)
    if close:
        s.close()
    return s


img = png_bytes(96, 64, 1)
photo = open(os.path.join(CONF, "inputs", "car-1.jpg"), "rb").read() if CONF and os.path.isdir(
    os.path.join(CONF, "inputs")) else png_bytes(300, 200, 2)

# ---------------------------------------------------------------- basics
s = Server("-m", TINY, "--max-body", "1M", "--max-pixels", "4000000")
check(s.wait_ready(), "readyz becomes 200 once the default model is loaded")
st, h, d = s.req("GET", "/healthz")
check(st == 200 and d == b"ok\n", "healthz")
st, h, d = s.req("GET", "/")
check(st == 200 and h["content-type"].startswith("text/html") and b"<html" in d.lower(), "web page at /")
st, h, d = s.req("GET", "/api")
doc = json.loads(d) if st == 200 else {}
check(st == 200 and doc.get("openapi", "").startswith("3.") and "/api/remove" in doc.get("paths", {}),
      "GET /api is an OpenAPI 3 document")
check("post" in doc.get("paths", {}).get("/api/remove", {}) and "get" in doc["paths"]["/api/remove"],
      "OpenAPI describes GET and POST /api/remove")
enum = doc["paths"]["/api/remove"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"][
    "properties"]["model"]["enum"]
check("isnet-general-use" in enum and "u2net" in enum, "OpenAPI lists the models")

# byte equality with cutout i, and every parameter
cases = [
    ({}, "", []),
    ({"om": "true"}, "", ["-om"]),
    ({"ppm": "1"}, "", ["-ppm"]),
    ({"om": "yes", "ppm": "on"}, "", ["-om", "-ppm"]),
    ({}, "?bgc=255,0,0,255", ["-bgc", "255", "0", "0", "255"]),
    ({"a": "true", "af": "200", "ab": "20", "ae": "5"}, "", ["-a", "-af", "200", "-ab", "20", "-ae", "5"]),
    # the HTTP default is no background colour; the CLI's is 0,0,0,0, which
    # zeroes RGB under alpha 0: give it explicitly where that shows
    ({"dc": "true"}, "?bgc=0,0,0,0", ["-dc"]),
    ({}, "?bgc=0,0,0,0&extras=" + "%7B%22putalpha%22%3Atrue%7D", ["-x", '{"putalpha": true}']),
    ({"dc": "true"}, "?bgc=10,20,30,255", ["-dc", "-bgc", "10", "20", "30", "255"]),
    ({"a": "false", "om": "false"}, "?ppm=true", ["-ppm"]),  # query params on POST too
]
for fields, q, args in cases:
    st, h, d = s.post("/api/remove" + q, fields, {"file": ("x.png", img)})
    ref = cutout_i(["-m", TINY] + args, img)
    check(st == 200 and h["content-type"] == "image/png" and d == ref,
          "POST %s %s equals cutout i %s" % (fields, q, " ".join(args)))
st, h, d = s.post("/api/remove", {"format": "webp"}, {"file": ("x.png", img)})
check(st == 200 and h["content-type"] == "image/webp" and d[8:12] == b"WEBP", "format=webp")
st, h, d = s.post("/api/remove?bgc=0,0,255,255", {"format": "jpg"}, {"file": ("x.png", img)})
check(st == 200 and h["content-type"] == "image/jpeg" and d[:2] == b"\xff\xd8", "format=jpg with opaque bgc")
st, h, d = s.post("/api/remove", {"format": "jpg"}, {"file": ("x.png", img)})
check(st == 422 and "transparency" in json.loads(d)["detail"], "format=jpg with alpha: 422")
st, h, d = s.post("/api/remove", {"model": TINY}, {"file": ("x.png", img)})
check(st == 200, "model = the server's default (a path given with -m)")
st, h, d = s.post("/api/remove", {"model": "/etc/passwd"}, {"file": ("x.png", img)})
check(st == 422, "a client-chosen model path is refused")
st, h, d = s.post("/api/remove?extras=%7B%22model_path%22%3A%22%2Fetc%2Fpasswd%22%7D", {},
                  {"file": ("x.png", img)})
check(st == 422 and "model_path" in json.loads(d)["detail"], "extras model_path refused without --allow-model-path")

# bad input: JSON detail, the right status, never 500
bad = [
    ("garbage bytes", s.post("/api/remove", {}, {"file": ("x.png", b"hello, not an image" * 20)}), 415),
    ("huge-dimension PNG header", s.post("/api/remove", {}, {"file": ("x.png", huge_png_header(100000, 100000))}),
     413),
    ("truncated PNG", s.post("/api/remove", {}, {"file": ("x.png", img[:len(img) // 2])}), 400),
    ("empty file", s.post("/api/remove", {}, {"file": ("x.png", b"")}), 400),
    ("no file part", s.post("/api/remove", {"model": "u2net"}, {}), 422),
    ("wrong content type", s.req("POST", "/api/remove", b'{"file": 1}', {"Content-Type": "application/json"}),
     415),
    ("no content type", s.req("POST", "/api/remove", b"xx"), 415),
    ("multipart without boundary", s.req("POST", "/api/remove", b"--x\r\n", {"Content-Type": "multipart/form-data"}),
     400),
    ("bad bool", s.post("/api/remove", {"om": "maybe"}, {"file": ("x.png", img)}), 422),
    ("af out of range", s.post("/api/remove", {"af": "300"}, {"file": ("x.png", img)}), 422),
    ("ae negative", s.post("/api/remove", {"ae": "-1"}, {"file": ("x.png", img)}), 422),
    ("bad bgc", s.post("/api/remove?bgc=1,2,3", {}, {"file": ("x.png", img)}), 422),
    ("bad extras", s.post("/api/remove?extras=%7Bnope", {}, {"file": ("x.png", img)}), 422),
    ("bad format", s.post("/api/remove", {"format": "gif"}, {"file": ("x.png", img)}), 422),
    ("unknown model", s.post("/api/remove", {"model": "nope"}, {"file": ("x.png", img)}), 422),
    ("GET without url", s.req("GET", "/api/remove"), 422),
    ("GET url to loopback (SSRF)", s.req("GET", "/api/remove?url=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fhealthz" % s.port),
     400),
    ("GET url to metadata (SSRF)", s.req("GET", "/api/remove?url=http%3A%2F%2F169.254.169.254%2F"), 400),
    ("GET url with a bad scheme", s.req("GET", "/api/remove?url=file%3A%2F%2F%2Fetc%2Fpasswd"), 400),
    ("unknown path", s.req("GET", "/nope"), 404),
    ("DELETE /api/remove", s.req("DELETE", "/api/remove"), 405),
]
for name, (st, h, d), want in bad:
    try:
        detail = json.loads(d)["detail"]
    except Exception:
        detail = None
    check(st == want and isinstance(detail, str) and detail and h.get("content-type") == "application/json",
          "%s: %d %s (want %d)" % (name, st, detail, want))

def raw_exchange(port, data):
    """Send data, read until the server closes or a full answer came."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(data)
    except OSError:
        pass
    resp = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            resp += chunk
            m = re.search(rb"content-length: (\d+)\r\n", resp, re.I)
            if m and b"\r\n\r\n" in resp and len(resp.split(b"\r\n\r\n", 1)[1]) >= int(m.group(1)):
                break
    except OSError:
        pass
    sock.close()
    return resp


# an announced oversize body is refused before it is read
resp = raw_exchange(s.port, b"POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                    b"boundary=x\r\nContent-Length: 999999999\r\n\r\n--x\r\n")
check(resp.startswith(b"HTTP/1.1 413") and b'"detail"' in resp, "Content-Length over the limit: 413 at once")

# chunked upload over the limit (no Content-Length): 413 after reading
sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
body, ct = multipart({}, {"file": ("x.png", b"\1" * (1 << 20) + b"\2" * (300 << 10))})
sock.sendall(("POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
              % ct).encode())
for k in range(0, len(body), 65536):
    part = body[k:k + 65536]
    sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
sock.sendall(b"0\r\n\r\n")
resp = b""
try:
    while b"\r\n\r\n" not in resp:
        chunk = sock.recv(65536)
        if not chunk:
            break
        resp += chunk
except OSError:
    pass
sock.close()
check(resp.startswith(b"HTTP/1.1 413"), "chunked body over the limit: 413 (%r)" % resp[:20])

# CORS
st, h, d = s.post("/api/remove", {}, {"file": ("x.png", img)}, )
check(h.get("access-control-allow-origin") == "*" and "access-control-allow-credentials" not in h,
      "CORS: any origin, no credentials")
st, h, d = s.req("OPTIONS", "/api/remove", headers={"Origin": "http://example.com",
                                                    "Access-Control-Request-Method": "POST",
                                                    "Access-Control-Request-Headers": "content-type,x-foo"})
check(st == 200 and h.get("access-control-allow-origin") == "*" and "POST" in h.get(
    "access-control-allow-methods", "") and h.get("access-control-allow-headers") == "content-type,x-foo",
      "CORS preflight")

# a client that disconnects mid-upload, and garbage on the socket: the
# server stays up
body, ct = multipart({}, {"file": ("x.png", img * 4)})
raw_send(s.port, ("POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                  % (ct, len(body))).encode() + body[:len(body) // 3])
raw_send(s.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200))
raw_send(s.port, b"GET /" + b"A" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")  # header larger than the limit
st, _, _ = s.req("GET", "/healthz")
check(st == 200 and s.p.poll() is None, "up after a half upload, TLS garbage and an oversized header")

m = s.req("GET", "/metrics")[2].decode()
for name in ["cutout_http_requests_total{code=\"200\"}", "cutout_http_requests_total{code=\"415\"}",
             "cutout_stage_seconds_bucket{stage=\"inference\",le=\"+Inf\"}",
             "cutout_stage_seconds_count{stage=\"decode\"}", "cutout_stage_seconds_count{stage=\"encode\"}",
             "cutout_stage_seconds_count{stage=\"queue_wait\"}", "cutout_queue_depth", "cutout_in_flight",
             "cutout_workers_busy", "cutout_worker_utilisation", "cutout_ort_pool_threads",
             "cutout_process_threads", "cutout_resident_memory_bytes", "cutout_canceled_total{reason=\"timeout\"}"]:
    check(re.search("^" + re.escape(name) + " ", m, re.M) is not None, "metrics: " + name)
check(s.metric("cutout_resident_memory_bytes") > 1e6 and s.metric("cutout_process_threads") >= 3,
      "metrics: RSS and thread count are real")
code = s.stop()
check(code == 0, "SIGTERM on an idle server: exit 0 (%d)" % code)
log = s.text()
check(re.search(r'INFO: 127\.0\.0\.1 "POST /api/remove" 200 \d+ ', log) is not None, "access log lines on stderr")
check(" 500 " not in log, "no 500 in the whole access log")

# ---------------------------------------------------------------- load: 503, disconnects, slow client, shutdown
big = png_bytes(900, 700, 3)
s = Server("-m", TINY, "-t", "1", "--queue", "1", "--conn-timeout", "2")
check(s.wait_ready(), "second server ready")
slow_fields = {"a": "true", "ae": "0", "af": "128", "ab": "127"}  # alpha matting on 900x700: seconds


def bg_post(results, key, fields):
    try:
        results[key] = s.post("/api/remove", fields, {"file": ("x.png", big)}, timeout=300)[0]
    except Exception as e:  # noqa
        results[key] = repr(e)


res = {}
t1 = threading.Thread(target=bg_post, args=(res, "first", slow_fields))
t1.start()
check(s.wait_metric("cutout_workers_busy", lambda v: v >= 1), "the first job runs")
t2 = threading.Thread(target=bg_post, args=(res, "second", slow_fields))
t2.start()
check(s.wait_metric("cutout_queue_depth", lambda v: v >= 1), "the second job waits in the queue")
st, h, d = s.post("/api/remove", {}, {"file": ("x.png", img)})
check(st == 503 and h.get("retry-after") and "queue" in json.loads(d)["detail"], "queue full: 503 + Retry-After")
check(s.metric("cutout_rejected_total") >= 1, "metrics count the rejection")
# graceful shutdown: SIGTERM now; both accepted requests still complete
s.p.send_signal(signal.SIGTERM)
t1.join(300)
t2.join(300)
code = s.p.wait(120)
check(res.get("first") == 200 and res.get("second") == 200,
      "shutdown finishes the requests in flight (%s)" % res)
check(code == 0, "graceful shutdown exits 0 (%s)" % code)

s = Server("-m", TINY, "-t", "1", "--queue", "2", "--conn-timeout", "2")
check(s.wait_ready(), "third server ready")
body, ct = multipart(slow_fields, {"file": ("x.png", big)})
head = ("POST /api/remove HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (ct, len(body))).encode()
running = raw_send(s.port, head + body, close=False)
check(s.wait_metric("cutout_workers_busy", lambda v: v >= 1), "a long job runs")
queued = raw_send(s.port, head + body, close=False)
check(s.wait_metric("cutout_queue_depth", lambda v: v >= 1), "another waits")
queued.close()
check(s.wait_metric('cutout_canceled_total{reason="client_gone_queued"}', lambda v: v >= 1),
      "a client gone while queued is dropped")
running.close()
check(s.wait_metric('cutout_canceled_total{reason="client_gone_running"}', lambda v: v >= 1),
      "a client gone mid-inference is cancelled")
check(s.wait_metric("cutout_in_flight", lambda v: v == 0), "nothing left in flight")
# slow client (slowloris): the idle connection is closed by the server
slow = socket.create_connection(("127.0.0.1", s.port), timeout=30)
slow.sendall(b"POST /api/remove HTTP/1.1\r\nHost: x\r\n")
t0 = time.time()
try:
    closed = slow.recv(100) == b""
except OSError:
    closed = True
check(closed and time.time() - t0 < 25, "a slow client is disconnected by the idle timeout")
st, _, d = s.post("/api/remove", {}, {"file": ("x.png", img)})
check(st == 200, "the server still answers after all that")
check(s.stop() == 0, "exit 0")

# ---------------------------------------------------------------- the real ISNet, once
isnet = os.path.join(REAL, "isnet-general-use.onnx")
if os.path.exists(isnet) and CONF:
    s = Server("-m", "isnet-general-use", env={"U2NET_HOME": REAL})
    check(s.wait_ready(), "ISNet server ready")
    st, h, d = s.post("/api/remove", {"model": "isnet-general-use"}, {"file": ("car-1.jpg", photo)}, timeout=300)
    os.environ["U2NET_HOME"] = REAL
    ref = cutout_i(["-m", "isnet-general-use"], photo)
    check(st == 200 and d == ref, "real ISNet on a conformance photo: server == cutout i, byte for byte")
    check(s.stop() == 0, "exit 0")
else:
    print("skip: real ISNet case (no model or conformance photos)")

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
