#!/usr/bin/env python3
"""A local HTTP receiver for the delivery tests: records every request it is sent and can be told
to misbehave. Standard library only.

    receiver.py --port 0 --log requests.jsonl --port-file port.txt

Each request (other than control) is appended to the log as one JSON line: time, method, path,
headers, body. The receiver is controlled over HTTP:

    POST /_control {"mode": "ok"}          answer 200 "ok" (the default)
    POST /_control {"mode": "status", "status": 500}   answer that status
    POST /_control {"mode": "stall"}       read the request, then never answer
    POST /_control {"mode": "reset"}       read the request, then reset the connection
    POST /_control {"mode": "redirect", "location": "http://..."}   answer 302
    POST /_control {"mode": "huge"}        answer 200 with 50 MB of body
    POST /_control {"mode": "slow", "delay": 2.5}   answer 200 after that many seconds
    GET  /_requests                         the log so far, as a JSON array

A request answered "stall", "reset" or with a status other than 2xx is logged with "answered"
telling what it got, so a test can tell attempts from deliveries.
"""
import argparse
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"mode": "ok", "status": 200, "location": "", "delay": 0.0}
requests = []
log_path = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK hold the second for 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _answer(self, status, body=b"ok", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_requests":
            with lock:
                body = json.dumps(requests).encode()
            self._answer(200, body, [("Content-Type", "application/json")])
        else:
            self._answer(404, b"not found")

    def do_POST(self):
        body = self._body()
        if self.path == "/_control":
            with lock:
                state.update(json.loads(body or b"{}"))
            self._answer(200)
            return
        with lock:
            mode = dict(state)
        entry = {"time": time.time(), "method": "POST", "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body.decode("utf-8", "replace"), "answered": mode["mode"]}
        if mode["mode"] == "status":
            entry["answered"] = "status %d" % mode["status"]
        with lock:
            requests.append(entry)
            if log_path:
                with open(log_path, "a") as f:
                    f.write(json.dumps(entry) + "\n")
        m = mode["mode"]
        if m == "ok":
            self._answer(200)
        elif m == "status":
            self._answer(int(mode["status"]), b"failing on purpose")
        elif m == "stall":
            time.sleep(3600)
        elif m == "reset":
            # SO_LINGER with a zero timeout: close() sends a RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif m == "redirect":
            self._answer(302, b"moved", [("Location", mode["location"])])
        elif m == "huge":
            chunk = b"x" * 65536
            self.send_response(200)
            self.send_header("Content-Length", str(800 * len(chunk)))
            self.end_headers()
            try:
                for _ in range(800):
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif m == "slow":
            time.sleep(float(mode["delay"]))
            self._answer(200)


def main():
    global log_path
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    log_path = a.log
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.replace(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
