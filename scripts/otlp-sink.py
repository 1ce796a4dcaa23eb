#!/usr/bin/env python3
"""An OTLP/HTTP trace sink for measuring what export costs: accepts `POST /v1/traces`,
counts requests and bytes, answers with an empty ExportTraceServiceResponse.

    scripts/otlp-sink.py [PORT]     # default 4318; prints totals on Ctrl-C

Then run the server or the bench with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT.
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

totals = {"requests": 0, "bytes": 0}


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        totals["requests"] += 1
        totals["bytes"] += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    server = ThreadingHTTPServer(("127.0.0.1", port), Sink)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    print(f"otlp-sink: {totals['requests']} exports, {totals['bytes'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
