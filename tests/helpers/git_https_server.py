#!/usr/bin/env python3
"""A smart-HTTP git server over TLS on loopback for the gitsync tests.

Bridges every request to `git http-backend` (CGI) after checking HTTP Basic
credentials. Standard library only; no shell.

    git_https_server.py ROOT CERT KEY USER TOKEN

ROOT holds the bare repositories (GIT_PROJECT_ROOT). A request without the
right Authorization header gets 401 with a Basic challenge. Prints
"msg=listening address=127.0.0.1:PORT" once it listens, and one line per
request ("request method=GET path=... status=...") to stdout.
"""
import base64
import http.server
import os
import ssl
import subprocess
import sys

BACKEND_CANDIDATES = ("/usr/lib/git-core/git-http-backend", "/usr/libexec/git-core/git-http-backend")
MAX_BODY = 64 << 20


def find_backend():
    for path in BACKEND_CANDIDATES:
        if os.access(path, os.X_OK):
            return [path]
    return ["git", "http-backend"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vigil-test-git/1"

    def log_message(self, fmt, *args):  # quiet: one line per request in reply()
        pass

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("request method=%s path=%s status=%d" % (self.command, self.path, status), flush=True)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    raise ValueError("body too large")
                out += self.rfile.read(size)
                self.rfile.readline(16)
        n = int(self.headers.get("Content-Length", "0") or "0")
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def authorized(self):
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (self.server.user, self.server.token)).encode()).decode()
        return self.headers.get("Authorization", "") == want

    def handle_any(self):
        try:
            body = self.read_body()
        except ValueError:
            self.reply(413, [], b"too large\n")
            return
        if not self.authorized():
            # An empty body: libgit2 1.5.1 (mbedTLS) misreads a 401 body left
            # on a kept-alive connection as the start of the next response.
            self.reply(401, [("WWW-Authenticate", 'Basic realm="vigil test"')], b"")
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": self.server.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": self.server.user,
            "REMOTE_ADDR": self.client_address[0],
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        proc = subprocess.run(find_backend(), input=body, env=env, capture_output=True, check=False)
        head, sep, payload = proc.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, payload = proc.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            if not line.strip():
                continue
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            else:
                headers.append((k.strip(), v.strip()))
        self.reply(status, headers, payload)

    do_GET = handle_any
    do_POST = handle_any


def main():
    if len(sys.argv) != 6:
        sys.stderr.write(__doc__)
        return 2
    root, cert, key, user, token = sys.argv[1:]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.root, srv.user, srv.token = root, user, token
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("msg=listening address=127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
