"""A stand-in for the search service the seed app syncs products to.

Listens on 127.0.0.1:PORT (default 7800), accepts the Azure AI Search "index documents" request
the seed's ``sync_to_search_index`` sends (``POST /indexes/products/docs/index`` with an
``api-key`` header), answers 200, and prints each request as one JSON line on stdout:
``{"path": ..., "api_key": ..., "body": {...}}``.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SearchReceiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        record = {"path": self.path, "api_key": self.headers.get("api-key"), "body": body}
        print(json.dumps(record), flush=True)
        reply = json.dumps({"value": [{"key": doc.get("id"), "status": True} for doc in body.get("value", [])]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, format: str, *args: object) -> None:
        """Requests are printed as JSON lines instead."""


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7800
    server = ThreadingHTTPServer(("127.0.0.1", port), SearchReceiver)
    print(f"search receiver on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
