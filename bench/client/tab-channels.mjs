// How tabs could reach the one connection they share (ARCHITECTURE.md, "Tabs sharing one
// connection"): the two candidates' cost per message, measured in Debian chromium.
//
//   node tab-channels.mjs [MESSAGES]      (default 10,000 per run, 3 runs each)
//
// - `broadcast`: what Chorus does. A follower page posts on a BroadcastChannel, the leading page
//   (another tab) hears it and posts the answer back on the channel, as it relays a frame to the
//   socket and the server's frame back.
// - `worker`: the alternative. The page posts on its MessagePort to a SharedWorker (which would
//   own the socket) and the worker answers on the port.
//
// Each message is a ~200-byte frame text in the shape Chorus's channel uses (`["s", tab, text]`).
// Two figures per run: the round trip of one message at a time (µs, the mean over the run) and
// the throughput with 100 in flight (round trips/s). It prints one line per run and the medians.
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const messages = Number(process.argv[2] ?? 10000);
const worker = `onconnect = (e) => { const port = e.ports[0]; port.onmessage = (m) => port.postMessage(m.data); };`;
const server = createServer((request, response) => {
  const [type, body] = request.url === "/worker.js" ? ["text/javascript", worker] : ["text/html", "<!doctype html><title>tabs</title>"];
  response.writeHead(200, { "content-type": type });
  response.end(body);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const context = await browser.newContext();
const leader = await context.newPage();
const follower = await context.newPage();
for (const page of [leader, follower]) await page.goto(`${origin}/`);
// The leading tab echoes every request on the channel, as the leader relays frames.
await leader.evaluate(() => {
  const channel = new BroadcastChannel("chorus bench");
  channel.onmessage = (m) => m.data[0] === "s" && channel.postMessage(["m", m.data[1], m.data[2]]);
});

/** In the follower page: `count` messages one at a time, then `count` with 100 in flight. */
function measure([kind, count]) {
  const text = JSON.stringify({ type: "publish", room: "r", id: "x".repeat(22), body: { text: "y".repeat(120) } });
  let send;
  let onAnswer = () => {};
  if (kind === "broadcast") {
    const channel = new BroadcastChannel("chorus bench");
    channel.onmessage = (m) => m.data[0] === "m" && onAnswer();
    send = () => channel.postMessage(["s", "t1", text]);
  } else {
    const port = new SharedWorker("/worker.js").port;
    port.onmessage = () => onAnswer();
    port.start();
    send = () => port.postMessage(["s", "t1", text]);
  }
  const once = () => new Promise((resolve) => ((onAnswer = resolve), send()));
  return (async () => {
    for (let i = 0; i < 200; i++) await once(); // warm up
    // The mean over the whole run: a page that is not cross-origin isolated reads
    // performance.now() in 100 µs steps, too coarse for one trip.
    let start = performance.now();
    for (let i = 0; i < count; i++) await once();
    const trip = ((performance.now() - start) * 1000) / count;
    start = performance.now();
    await new Promise((resolve) => {
      let sent = 0;
      let answered = 0;
      onAnswer = () => (++answered === count ? resolve() : sent < count && (send(), sent++));
      for (; sent < 100; sent++) send();
    });
    const seconds = (performance.now() - start) / 1000;
    return { trip, perSecond: count / seconds };
  })();
}

const results = { broadcast: [], worker: [] };
for (let run = 1; run <= 3; run++) {
  for (const kind of ["broadcast", "worker"]) {
    const page = kind === "broadcast" ? follower : await context.newPage();
    if (page !== follower) await page.goto(`${origin}/`);
    const result = await page.evaluate(measure, [kind, messages]);
    if (page !== follower) await page.close();
    results[kind].push(result);
    console.log(`${kind} run ${run}: round trip ${result.trip.toFixed(1)} µs (mean of ${messages} one at a time); ${Math.round(result.perSecond)} messages/s with 100 in flight`);
  }
}
const median = (values) => values.sort((a, b) => a - b)[1];
for (const kind of ["broadcast", "worker"]) {
  const runs = results[kind];
  console.log(
    `${kind}: medians of 3 runs of ${messages}: round trip ${median(runs.map((r) => r.trip)).toFixed(1)} µs, ${Math.round(median(runs.map((r) => r.perSecond)))} messages/s with 100 in flight`,
  );
}
await browser.close();
server.close();
