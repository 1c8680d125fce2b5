"""HTTP servers on loopback for tests/unit/test_url_fetch.c.

main   127.0.0.2:P   the routes below (the test allows 127.0.0.2/32)
three  127.0.0.3:Q   the same routes (a second host, for cross-host hops)
trap   127.0.0.1:T   answers 200 "TRAP" to anything; must never be reached
trap6  [::1]:T6      the same on IPv6 loopback (0 if ::1 cannot be bound)

With URL_FETCH_FILES=DIR in the environment, GET /files/NAME serves
DIR/NAME (tests/cli/test_server_url.sh fetches images through cutout s).

Prints one line, "P Q T T6", then serves until stdin closes (the test
holds the pipe, so the servers die with it).  Every request except /hits
is counted per listener; GET /hits answers "main three trap trap6".
"""
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OK_BODY = bytes((i * 7) % 251 for i in range(3000))
hits = {"main": 0, "three": 0, "trap": 0, "trap6": 0}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close-delimited bodies without Content-Length

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=(), length=True):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path != "/hits":
            with lock:
                hits[self.server.name] += 1
        try:
            self.route(url.path, q)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on purpose (caps, timeouts)

    def route(self, path, q):
        if self.server.name.startswith("trap"):
            return self.send(200, b"TRAP")
        port = self.server.server_address[1]
        if path == "/hits":
            with lock:
                s = "%(main)d %(three)d %(trap)d %(trap6)d" % hits
            return self.send(200, s.encode())
        if path.startswith("/files/") and os.environ.get("URL_FETCH_FILES"):
            name = os.path.basename(path[7:])
            try:
                with open(os.path.join(os.environ["URL_FETCH_FILES"], name), "rb") as f:
                    return self.send(200, f.read())
            except OSError:
                return self.send(404, b"no such file")
        if path == "/ok":
            return self.send(200, OK_BODY)
        if path.startswith("/status/"):
            return self.send(int(path[8:]), b"" if path[8:] == "204" else b"status body")
        if path == "/redir":
            return self.send(int(q.get("code", "302")), b"moved", [("Location", q["to"])])
        if path == "/noloc":
            return self.send(302, b"no location")
        if path.startswith("/chain/"):
            n = int(path[7:])
            if n == 0:
                return self.send(200, b"end")
            # every form of Location: absolute path, relative, scheme-relative, absolute
            loc = ["/chain/%d", "%d", "//127.0.0.2:%d/chain/%%d" % port,
                   "http://127.0.0.2:%d/chain/%%d" % port][n % 4] % (n - 1)
            return self.send(302, b"", [("Location", loc)])
        if path == "/big":
            n = int(q["n"])
            self.send_response(200)
            if q.get("cl") == "1":
                self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                self.wfile.write(chunk[:n])
                n -= len(chunk)
            return None
        if path == "/bigcl-stall":  # announces 100 MB, then sends nothing
            self.send_response(200)
            self.send_header("Content-Length", "100000000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(30)
            return None
        if path == "/slow":  # headers, then no body
            self.send_response(200)
            self.end_headers()
            self.wfile.flush()
            time.sleep(30)
            return None
        if path == "/trickle":  # one byte every 100 ms: never idle, never done
            self.send_response(200)
            self.end_headers()
            for _ in range(300):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
            return None
        if path == "/header-stall":  # not even a status line
            time.sleep(30)
            return None
        return self.send(404, b"no such route")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Server6(Server):
    address_family = socket.AF_INET6


def start(cls, host, name):
    s = cls((host, 0), Handler)
    s.name = name
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s.server_address[1]


def main():
    ports = [start(Server, "127.0.0.2", "main"), start(Server, "127.0.0.3", "three"),
             start(Server, "127.0.0.1", "trap")]
    try:
        ports.append(start(Server6, "::1", "trap6"))
    except OSError:
        ports.append(0)
    print(" ".join(map(str, ports)), flush=True)
    sys.stdin.read()  # until the test closes its end
    os._exit(0)


if __name__ == "__main__":
    main()
