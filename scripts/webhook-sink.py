"""A local stand-in for a responder's phone: prints every webhook page it receives.

Usage: python3 scripts/webhook-sink.py [PORT]   (default 9999; used by `make run`)
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            page = json.loads(body)
            incident = page["incident"]
            print(
                f"webhook {self.path}: {page['event']} [{incident['severity']}] "
                f"{incident['title']} ({incident['status']}, {incident['alert_count']} alert(s))",
                flush=True,
            )
        except (ValueError, KeyError, TypeError):
            print(f"webhook {self.path}: {body[:200]!r}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
