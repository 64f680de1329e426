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
// `ScriptDuration`: JavaScript and WebAssembly only), both in seconds, at `at_s` seconds of
// this process's clock, from the DevTools protocol's Performance domain. The generator
// publishes between marks and works out microseconds per event and the main thread's share.
// `quit` (or end of input) exits.
//
// The browser is driven over the DevTools protocol directly (a pipe to Chromium, one session on
// the page, with the Page, Runtime, Inspector and Performance domains only), not through
// playwright-core: Playwright enables the Network domain on every page, and the renderer then
// reports each WebSocket frame to the driver, work on the measured thread: at 10k events/s it
// added 24–30 µs (medians) to each event's main-thread time and kept neither page up.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { createInterface } from "node:readline";

const [kind, base, room, token] = process.argv.slice(2);
if (!["chorus", "socketio"].includes(kind) || !base || !room || (kind === "chorus" && !token)) {
  console.error("usage: node page.mjs chorus BASE_URL ROOM TOKEN | socketio BASE_URL ROOM");
  process.exit(2);
}

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

// Chromium with a profile of its own, spoken to over `--remote-debugging-pipe`: commands go in
// on its fd 3 and answers and events come out on its fd 4, each message ending in a NUL. It
// exits when the pipe closes, so it never outlives this process, however this one ends.
const profile = mkdtempSync(join(tmpdir(), "chorus-bench-page-"));
const browser = spawn(
  "/usr/bin/chromium",
  ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-pipe", `--user-data-dir=${profile}`, "about:blank"],
  { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] },
);
const [toBrowser, fromBrowser] = [browser.stdio[3], browser.stdio[4]];
let lastId = 0;
const answers = new Map();
const handlers = new Map();
const exited = new Promise((ok) => browser.on("exit", ok));
let ended = false;
exited.then(() => {
  if (ended) return;
  console.error("[page] chromium exited");
  process.exit(1);
});
let pending = "";
fromBrowser.setEncoding("utf8");
fromBrowser.on("data", (chunk) => {
  const messages = (pending + chunk).split("\0");
  pending = messages.pop();
  for (const text of messages) {
    const message = JSON.parse(text);
    if (message.id === undefined) {
      handlers.get(message.method)?.(message.params);
      continue;
    }
    const [ok, fail] = answers.get(message.id);
    answers.delete(message.id);
    message.error ? fail(new Error(`${message.error.message} (${message.error.code})`)) : ok(message.result);
  }
});
// `send` a command (to the browser, or to the page's session) and wait for its answer; `on` an
// event of the page's session.
const command = (method, params, sessionId) =>
  new Promise((ok, fail) => {
    answers.set(++lastId, [ok, fail]);
    toBrowser.write(`${JSON.stringify({ id: lastId, method, params, sessionId })}\0`);
  });
const { targetInfos } = await command("Target.getTargets", {});
const page = targetInfos.find((t) => t.type === "page")?.targetId ?? (await command("Target.createTarget", { url: "about:blank" })).targetId;
const { sessionId } = await command("Target.attachToTarget", { targetId: page, flatten: true });
const send = (method, params = {}) => command(method, params, sessionId);
const on = (method, handler) => handlers.set(method, handler);
// Runs `fn(arg)` in the page (awaiting what it returns) and gives back its JSON value.
const evaluate = async (fn, arg) => {
  const expression = `(${fn})(${JSON.stringify(arg ?? null)})`;
  const { result, exceptionDetails } = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
  if (exceptionDetails) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
  return result.value;
};

on("Runtime.exceptionThrown", ({ exceptionDetails }) => console.error(`[page] ${exceptionDetails.exception?.description ?? exceptionDetails.text}`));
on("Inspector.targetCrashed", () => console.error("[page] crashed"));
await send("Runtime.enable");
await send("Inspector.enable");
await send("Page.enable");
const loaded = new Promise((ok) => on("Page.loadEventFired", ok));
const { errorText } = await send("Page.navigate", { url: `http://127.0.0.1:${statics.address().port}/` });
if (errorText) throw new Error(`the page did not load: ${errorText}`);
await loaded;

if (kind === "chorus") {
  await evaluate(async ({ base, room, token }) => {
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
  await evaluate(
    () =>
      new Promise((ok, fail) => {
        const script = Object.assign(document.createElement("script"), { src: "/socket.io.min.js", onload: ok, onerror: fail });
        document.head.append(script);
      }),
  );
  await evaluate(async ({ base, room }) => {
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

await send("Performance.enable", { timeDomain: "threadTicks" });
console.log("ready");

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "mark") break;
  const { metrics } = await send("Performance.getMetrics");
  const metric = (name) => metrics.find((m) => m.name === name)?.value ?? Number.NaN;
  const received = await evaluate(() => window.received);
  console.log(JSON.stringify({ received, task_s: metric("TaskDuration"), script_s: metric("ScriptDuration"), at_s: performance.now() / 1000 }));
}
ended = true;
await command("Browser.close", {}).catch(() => {});
await exited;
statics.close();
rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
