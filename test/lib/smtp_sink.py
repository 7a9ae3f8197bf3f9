#!/usr/bin/env python3
"""A local SMTP server for the e-mail example's test: accepts every message and records it.
Standard library only (Python's smtpd is deprecated and gone from 3.12).

    smtp_sink.py --port-file port.txt --log mail.jsonl

It speaks enough of RFC 5321 for Alertmanager's e-mail notifier: EHLO (advertising AUTH PLAIN
and LOGIN, no STARTTLS), AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT. Each message is appended to
the log as one JSON line: time, the authenticated user, envelope sender and recipients, the
Subject header and the whole message.
"""
import argparse
import os
import base64
import email
import email.policy
import json
import socketserver
import threading
import time

lock = threading.Lock()
log_path = None


class Session(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def line(self):
        raw = self.rfile.readline(65536)
        if not raw:
            raise EOFError
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        user, sender, rcpt = None, None, []
        self.reply("220 thrillmon-test-sink ESMTP")
        try:
            while True:
                cmd = self.line()
                verb = cmd.split(" ", 1)[0].upper()
                arg = cmd[len(verb):].strip()
                if verb == "EHLO":
                    self.reply("250-thrillmon-test-sink")
                    self.reply("250-AUTH PLAIN LOGIN")
                    self.reply("250 8BITMIME")
                elif verb == "HELO":
                    self.reply("250 thrillmon-test-sink")
                elif verb == "AUTH":
                    parts = arg.split()
                    if parts[0].upper() == "PLAIN":
                        token = parts[1] if len(parts) > 1 else None
                        if token is None:
                            self.reply("334 ")
                            token = self.line()
                        fields = base64.b64decode(token).split(b"\0")
                        user = fields[1].decode() if len(fields) > 1 else ""
                    else:  # LOGIN
                        self.reply("334 VXNlcm5hbWU6")
                        user = base64.b64decode(self.line()).decode()
                        self.reply("334 UGFzc3dvcmQ6")
                        self.line()
                    self.reply("235 2.7.0 Authentication successful")
                elif verb == "MAIL":
                    sender, rcpt = arg.split(":", 1)[1].strip(), []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    rcpt.append(arg.split(":", 1)[1].strip())
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 End data with <CR><LF>.<CR><LF>")
                    lines = []
                    while True:
                        l = self.line()
                        if l == ".":
                            break
                        lines.append(l[1:] if l.startswith("..") else l)
                    text = "\r\n".join(lines) + "\r\n"
                    msg = email.message_from_string(text, policy=email.policy.default)
                    part = msg.get_body(preferencelist=("plain", "html"))
                    record = {"time": time.time(), "user": user, "from": sender, "to": rcpt,
                              "subject": str(msg.get("Subject", "")), "message": text,
                              "text": part.get_content() if part is not None else ""}
                    with lock, open(log_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                    self.reply("250 OK: queued")
                elif verb == "RSET":
                    sender, rcpt = None, []
                    self.reply("250 OK")
                elif verb == "NOOP":
                    self.reply("250 OK")
                elif verb == "QUIT":
                    self.reply("221 Bye")
                    return
                else:
                    self.reply("502 Command not implemented")
        except (EOFError, ConnectionError):
            return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    global log_path
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    log_path = a.log
    srv = Server(("127.0.0.1", a.port), Session)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
