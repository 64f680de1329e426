// The shared-documents scenario's measurements (bench/src/scenario/docs.rs, issue 18): a Yjs
// document built from EDITS small edits, each posted as the backend's update
// (`POST /v1/rooms/{room}/docs/{doc}`), then:
// - `history_bytes`: what replaying the room's history would download (every update event, as
//   `GET /v1/rooms/{room}/events` pages hold them; only where the history still holds them all);
// - `open_bytes` / `open_gzip_bytes`: the server's answer to `GET /v1/rooms/{room}/docs/{doc}`
//   (the whole document as one update: what a client opening it downloads);
// - `server_ms`: that answer's time as this process sees it (median of 5);
// - `browser_open_ms`: in Chromium, from a fresh page's `ChorusClient.connect` to the
//   `ChorusProvider`'s `whenSynced()` with the whole text there, and `browser_sync_ms`, the
//   provider's part of it (from `new ChorusProvider` on a joined room), medians of 3 pages.
//
//   node docs.mjs BASE_URL TOKEN API_KEY EDITS
//
// Prints one JSON line with those figures.
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import * as Y from "yjs";

const [base, token, apiKey, edits] = process.argv.slice(2);
if (!base || !token || !apiKey || !(Number(edits) > 0)) {
  console.error("usage: node docs.mjs BASE_URL TOKEN API_KEY EDITS");
  process.exit(2);
}
const room = "bench-doc";
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];

// The edits: typing at a moving caret, now and then a word deleted (a seeded generator).
let seed = 18;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const doc = new Y.Doc();
const text = doc.getText("body");
const updates = [];
doc.on("update", (update) => updates.push(update));
let caret = 0;
for (let i = 0; i < Number(edits); i++) {
  if (text.length > 20 && random() < 0.1) {
    const at = Math.floor(random() * (text.length - 5));
    text.delete(at, 5);
    caret = at;
  } else {
    if (random() < 0.05) caret = Math.floor(random() * (text.length + 1));
    text.insert(caret, "abcdefghij klmnopqrstuvwxyz"[Math.floor(random() * 27)]);
    caret += 1;
  }
}
const auth = { authorization: `Bearer ${apiKey}` };
for (const update of updates) {
  const response = await fetch(`${base}/v1/rooms/${room}/docs/notes`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ update: Buffer.from(update).toString("base64"), from: "writer" }),
  });
  if (!response.ok) throw new Error(`posting an update: ${response.status} ${await response.text()}`);
}
// Let a compaction due after the last update finish.
await new Promise((r) => setTimeout(r, 1500));

let historyBytes = 0;
let historyEvents = 0;
for (let after = 0; ; ) {
  const page = await (await fetch(`${base}/v1/rooms/${room}/events?after=${after}&limit=1000`, { headers: auth })).json();
  if (page.oldest > 1) historyBytes = Number.NaN;
  for (const event of page.events) {
    historyBytes += JSON.stringify(event).length;
    historyEvents += 1;
  }
  if (page.next_after === undefined || !page.events.length) break;
  after = page.next_after;
}
const times = [];
let answer;
for (let i = 0; i < 5; i++) {
  const start = performance.now();
  answer = await (await fetch(`${base}/v1/rooms/${room}/docs/notes`, { headers: auth })).text();
  times.push(performance.now() - start);
}
const check = new Y.Doc();
Y.applyUpdate(check, Buffer.from(JSON.parse(answer).update, "base64"));
if (check.getText("body").toString() !== text.toString()) throw new Error("the server's document differs from the writer's");

// The page: the npm package and its Yjs entry with yjs, bundled, from a static server of its own.
const bundle = await build({
  stdin: {
    contents: 'import * as Y from "yjs"; import { ChorusClient } from "../../pkg/chorus.js"; import { ChorusProvider } from "../../pkg/yjs.js"; Object.assign(window, { Y, ChorusClient, ChorusProvider });',
    resolveDir: import.meta.dirname,
  },
  bundle: true,
  format: "esm",
  write: false,
  nodePaths: [new URL("node_modules", import.meta.url).pathname],
  logLevel: "warning",
});
const pkg = new URL("../../pkg/", import.meta.url);
const statics = createServer((request, response) => {
  const path = new URL(request.url, "http://x").pathname;
  let file = { "/": ["text/html", '<!doctype html><meta charset=utf-8><script type="module" src="/app.js"></script>'], "/app.js": ["text/javascript", bundle.outputFiles[0].contents] }[path];
  if (!file && path.startsWith("/pkg/") && !path.includes("..")) {
    try {
      file = [{ ".wasm": "application/wasm" }[extname(path)] ?? "text/javascript", readFileSync(new URL(path.slice(5), pkg))];
    } catch {}
  }
  response.writeHead(file ? 200 : 404, { "Content-Type": file?.[0] ?? "text/plain" });
  response.end(file?.[1] ?? "not found");
});
await new Promise((ok) => statics.listen(0, "127.0.0.1", ok));
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const opens = [];
const syncs = [];
for (let i = 0; i < 3; i++) {
  const page = await browser.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.goto(`http://127.0.0.1:${statics.address().port}/`);
  await page.waitForFunction(() => window.ChorusProvider);
  const figures = await page.evaluate(
    async ({ base, room, token, length }) => {
      const start = performance.now();
      const client = await ChorusClient.connect({ url: base, token, wasmUrl: "/pkg/chorus_bg.wasm", shareConnection: false });
      const joined = client.join(room);
      await new Promise((ok) => joined.on("joined", ok));
      const synced = performance.now();
      const doc = new Y.Doc();
      const provider = new ChorusProvider(joined, doc, { name: "notes" });
      await provider.whenSynced();
      const end = performance.now();
      if (doc.getText("body").length !== length) throw new Error("the page's document differs");
      client.close();
      return { open: end - start, sync: end - synced };
    },
    { base, room, token, length: text.length },
  );
  opens.push(figures.open);
  syncs.push(figures.sync);
  await page.close();
}
await browser.close();
statics.close();
console.log(
  JSON.stringify({
    edits: Number(edits),
    text_chars: text.length,
    history_events: historyEvents,
    history_bytes: historyBytes,
    open_bytes: answer.length,
    open_gzip_bytes: gzipSync(answer).length,
    server_ms: median(times),
    browser_open_ms: median(opens),
    browser_sync_ms: median(syncs),
  }),
);
