// The browser side of the benchmark's client-CPU scenario (bench/src/scenario/client_cpu.rs):
// one page in Debian chromium that joins a room through a client library and counts the
// benchmark events it receives, reading each one's `bench` field as an app would.
//
//   node page.mjs chorus   http://127.0.0.1:PORT ROOM TOKEN   (the npm package, pkg/)
//   node page.mjs socketio http://127.0.0.1:PORT ROOM         (socket.io-client 4.8, WebSocket)
//
// It prints `ready` once the page has joined, then answers each `mark` line on stdin with one
// JSON line: the events received so far and the renderer main thread's busy time
// (`TaskDuration`: every task it ran, the library's and the browser's work for each message;
// `ScriptDuration`: JavaScript and WebAssembly only), both in seconds, at `Timestamp` seconds,
// from the DevTools protocol's Performance domain. The generator publishes between marks and
// works out microseconds per event and the main thread's share. `quit` (or end of input) exits.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [kind, base, room, token] = process.argv.slice(2);
if (!["chorus", "socketio"].includes(kind) || !base || !room || (kind === "chorus" && !token)) {
  console.error("usage: node page.mjs chorus BASE_URL ROOM TOKEN | socketio BASE_URL ROOM");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage();
page.on("pageerror", (error) => console.error(`[page] ${error}`));
page.on("crash", () => console.error("[page] crashed"));

// The page comes from a static server of its own on loopback (another origin than the server
// under test, as for most apps; an origin on loopback, so Chromium lets it reach a loopback
// server): the page, socket.io-client's browser build, and the npm package from pkg/.
const pkg = new URL("../../pkg/", import.meta.url);
const files = {
  "/": ["text/html", "<!doctype html><meta charset=utf-8><title>client CPU</title>"],
  "/socket.io.min.js": ["text/javascript", readFileSync(new URL("node_modules/socket.io-client/dist/socket.io.min.js", import.meta.url))],
};
const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json" };
const statics = createServer((request, response) => {
  const path = new URL(request.url, "http://x").pathname;
  let file = files[path];
  if (!file && path.startsWith("/pkg/") && !path.includes("..")) {
    try {
      file = [types[extname(path)] ?? "application/octet-stream", readFileSync(new URL(path.slice(5), pkg))];
    } catch {}
  }
  response.writeHead(file ? 200 : 404, { "Content-Type": file?.[0] ?? "text/plain" });
  response.end(file?.[1] ?? "not found");
});
await new Promise((ok) => statics.listen(0, "127.0.0.1", ok));
await page.goto(`http://127.0.0.1:${statics.address().port}/`);

if (kind === "chorus") {
  await page.evaluate(async ({ base, room, token }) => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const client = await ChorusClient.connect({ url: base, token, transport: "websocket" });
    window.received = 0;
    const joined = client.join(room);
    joined.on("event", (event) => {
      if (event.body.bench) window.received += 1;
    });
    await new Promise((ok) => joined.on("joined", ok));
  }, { base, room, token });
} else {
  await page.addScriptTag({ url: "/socket.io.min.js" });
  await page.evaluate(async ({ base, room }) => {
    const socket = window.io(base, { transports: ["websocket"] });
    window.received = 0;
    socket.on("msg", (payload) => {
      if (payload.bench) window.received += 1;
    });
    await new Promise((ok) => {
      socket.on("joined", ok);
      socket.emit("join", room);
    });
  }, { base, room });
}

const cdp = await page.context().newCDPSession(page);
await cdp.send("Performance.enable", { timeDomain: "threadTicks" });
console.log("ready");

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "mark") break;
  const { metrics } = await cdp.send("Performance.getMetrics");
  const metric = (name) => metrics.find((m) => m.name === name)?.value ?? Number.NaN;
  const received = await page.evaluate(() => window.received);
  console.log(JSON.stringify({ received, task_s: metric("TaskDuration"), script_s: metric("ScriptDuration"), at_s: performance.now() / 1000 }));
}
await browser.close();
statics.close();
