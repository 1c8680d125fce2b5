#!/usr/bin/env python3
"""A model server on loopback for the download tests (test_download.sh):
it serves the files of a folder the way GitHub's release CDN would, and
misbehaves on request.  The first path element picks the behaviour:

  /ok/ASSET        the file, with HTTP Range (206) support (ASSET may be
                   in a subfolder: /ok/tiny/u2netp.onnx)
  /noranges/ASSET  the file, always whole (200), Range ignored
  /trunc/ASSET     the first request for ASSET announces the full length
                   and closes after half; later ones behave as /ok
  /slow/ASSET      announces the length, sends 10 bytes, then stalls
  /garbage/ASSET   the right length of wrong bytes
  anything else, or a missing file: 404

Absolute-form request lines ("GET http://host/ok/x HTTP/1.1") are served
too, so the server doubles as an HTTP proxy for the proxy test.  Each
request is logged as one line "METHOD TARGET RANGE" to LOGFILE.  It binds
127.0.0.1 only, on a free port written to PORTFILE.

usage: model_server.py FOLDER PORTFILE LOGFILE
"""
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FOLDER, PORTFILE, LOGFILE = sys.argv[1:4]
truncated = set()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def log_request_line(self):
        with lock, open(LOGFILE, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range", "-")))

    def do_GET(self):
        self.log_request_line()
        path = urlsplit(self.path).path if "://" in self.path else self.path
        parts = path.strip("/").split("/", 1)
        if len(parts) != 2 or any(p in ("", ".", "..") or p.startswith(".")
                                  for p in parts[1].split("/")):
            return self.send_error(404)
        mode, asset = parts
        fpath = os.path.join(FOLDER, asset)
        if mode not in ("ok", "noranges", "trunc", "slow", "garbage") or not os.path.isfile(fpath):
            return self.send_error(404)
        data = open(fpath, "rb").read()
        if mode == "garbage":
            data = bytes((b + 1) % 256 for b in data[:4096]) + data[4096:]
        if mode == "trunc":
            with lock:
                first = asset not in truncated
                truncated.add(asset)
            if first:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "noranges" and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "slow":
            self.wfile.write(body[:10])
            self.wfile.flush()
            time.sleep(20)
            return
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
tmp = PORTFILE + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, PORTFILE)
srv.serve_forever()
