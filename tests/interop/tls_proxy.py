#!/usr/bin/python3
"""A TLS-terminating reverse proxy for one HTTP backend, as a tracker runs
behind nginx in production: HTTPS on 127.0.0.1:PORT, forwarding each GET
to http://127.0.0.1:BACKEND with the same path and query.

  tls_proxy.py PORT CERT KEY BACKEND

Prints "ready" once listening. Loopback only.
"""
import http.server
import ssl
import sys
import urllib.request


def main():
    port, cert, key, backend = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (backend, self.path), timeout=10) as r:
                body = r.read()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
