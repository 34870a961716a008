// The interop tests' client in node's `ws` (Debian's node-ws): the exchanges the Python
// clients make in tests/test_websocket_interop.py, what it saw printed as one JSON object.
// Usage: node ws_client.js URL DEFLATE(0|1)
"use strict";
const crypto = require("crypto");
const WebSocket = require("ws");

const [url, deflate] = process.argv.slice(2);
const FRAGMENT = 1 << 16;

// A connection and next(): the next message, pong or close, in arrival order.
function open() {
  const ws = new WebSocket(url, { perMessageDeflate: deflate === "1" });
  const inbox = [];
  let waiting = null;
  const push = (item) => {
    if (waiting) {
      const wake = waiting;
      waiting = null;
      wake(item);
    } else {
      inbox.push(item);
    }
  };
  ws.on("message", (data, isBinary) => push({ kind: isBinary ? "binary" : "text", data }));
  ws.on("pong", (data) => push({ kind: "pong", data }));
  ws.on("close", (code, reason) => push({ kind: "close", code, reason: reason.toString() }));
  const next = () =>
    inbox.length ? Promise.resolve(inbox.shift()) : new Promise((wake) => (waiting = wake));
  return new Promise((resolve, reject) => {
    ws.on("open", () => resolve({ ws, next }));
    ws.on("error", reject);
  });
}

async function main() {
  const report = {};
  let { ws, next } = await open();
  report.deflate = ws.extensions.includes("permessage-deflate");
  ws.send("héllo");
  let got = await next();
  report.text = got.kind === "text" && got.data.toString() === "héllo";
  const small = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
  ws.send(small);
  got = await next();
  report.binary = got.kind === "binary" && got.data.equals(small);
  const big = crypto.randomBytes(1 << 20);
  for (let at = 0; at < big.length; at += FRAGMENT) {
    const fin = at + FRAGMENT >= big.length;
    ws.send(big.subarray(at, at + FRAGMENT), { binary: true, fin });
  }
  got = await next();
  report.large = got.kind === "binary" && got.data.equals(big);
  ws.ping("ping?");
  got = await next();
  report.pong = got.kind === "pong" && got.data.toString() === "ping?";
  ws.close(4001, "client bye");
  got = await next();
  report.client_close = got.kind === "close" ? got.code : null;

  ({ ws, next } = await open());
  ws.send("close me");
  got = await next();
  report.server_close = [got.code, got.reason];
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
