# A backend for Switchboard's RPC proxy: checks the hub's signature, answers "motivation".
# Run: SWITCHBOARD_RPC_PROXY_SECRET=s3cret python3 docs/examples/motivation_backend.py  (port 9000)
import hashlib, hmac, json, os, time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["SWITCHBOARD_RPC_PROXY_SECRET"].encode()

class Rpc(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers.get("X-Switchboard-Timestamp", "0")
        mac = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 300
        if not fresh or not hmac.compare_digest("sha256=" + mac, self.headers.get("X-Switchboard-Signature", "")):
            return self.send_error(401)
        call = json.loads(body)
        if call["method"] == "motivation":
            answer = {"result": {"text": f"Keep going, {call['user']['name']}: one entry a day adds up."}}
        else:
            answer = {"error": {"code": "unknown_method", "message": call["method"]}}
        out = json.dumps(answer).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)

HTTPServer(("127.0.0.1", 9000), Rpc).serve_forever()
