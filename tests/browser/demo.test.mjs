// The npm package in a real browser (Debian chromium), through the plain-JS demo page.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { freePort, launchBrowser, messages, openDemo, startNginx, startServer, stopServer, tempDir, waitForBadge } from "./harness.mjs";

let browser;
let server;
let port;
const dir = tempDir();

before(async () => {
  port = await freePort();
  server = await startServer(port, dir);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopServer(server);
});

async function send(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

const waitForText = (page, selector, text, timeout = 10000) =>
  page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent.includes(t), [selector, text], { timeout });

test("two pages see each other's messages, presence and typing", async () => {
  const base = `http://127.0.0.1:${port}`;
  const ana = await openDemo(browser, base, { name: "Ana", room: "t:two" });
  const ben = await openDemo(browser, base, { name: "Ben", room: "t:two" });
  await waitForText(ana.page, "#presence", "Ben");
  await waitForText(ben.page, "#presence", "Ana");
  await ana.page.type("#text", "hel");
  await waitForText(ben.page, "#typing", "ana is typing");
  await send(ana.page, "hello");
  await waitForText(ben.page, "#log", "Ana: hello");
  // Sending stops typing.
  await ben.page.waitForFunction(() => document.getElementById("typing").textContent === "", null, { timeout: 10000 });
  await ana.page.waitForFunction(() => document.querySelector("#log li")?.dataset.status === "confirmed");
  assert.deepEqual(await messages(ana.page), ["Ana: hello [confirmed]"]);
  assert.deepEqual(await messages(ben.page), ["Ana: hello [confirmed]"]);
  await ana.context.close();
  await ben.context.close();
});

test("the JS API refuses bad input with a ChorusError code and a sentence, and keeps working", async () => {
  const base = `http://127.0.0.1:${port}`;
  const { context, page } = await openDemo(browser, base, { name: "Eve", room: "t:errors" });
  const outcome = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const response = await fetch("/v1/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Eve" }) });
    const { token } = await response.json();
    const caught = (f) => {
      try {
        f();
        return "no error";
      } catch (error) {
        return `${error.name} ${error.code}: ${error.message}`;
      }
    };
    const result = {};
    result.transport = await ChorusClient.connect({ url: location.origin, token, transport: "pigeon" }).then(
      () => "no error",
      (error) => `${error.name}: ${error.message}`,
    );
    const client = await ChorusClient.connect({ url: location.origin, token, storagePrefix: "chorus:errors:" });
    result.room = caught(() => client.join("no spaces allowed"));
    const room = client.join("t:errors");
    result.body = await room.publish(undefined).then(() => "no error", (error) => `${error.name} ${error.code}`);
    if (client.state.badge !== "live") await new Promise((resolve) => client.on("state", (s) => s.badge === "live" && resolve()));
    result.acked = typeof (await room.publish({ ok: true })).seq;
    client.close();
    result.closed = await room.publish(1).then(() => "no error", (error) => `${error.name} ${error.code}`);
    return result;
  });
  assert.equal(outcome.transport, 'TypeError: options.transport must be auto, websocket or polling, not "pigeon"');
  assert.match(outcome.room, /^ChorusError invalid_room: .{10,}/);
  assert.equal(outcome.body, "ChorusError invalid_json");
  assert.equal(outcome.acked, "number");
  assert.equal(outcome.closed, "ChorusError closed");
  await context.close();
});

test("messages sent offline are delivered exactly once, in order, when back online", async () => {
  const base = `http://127.0.0.1:${port}`;
  const ana = await openDemo(browser, base, { name: "Ana", room: "t:offline" });
  const ben = await openDemo(browser, base, { name: "Ben", room: "t:offline" });
  await ana.context.setOffline(true);
  await waitForBadge(ana.page, "offline");
  for (const text of ["one", "two", "three"]) await send(ana.page, text);
  await waitForText(ana.page, "#queued", "3 waiting to be sent");
  assert.deepEqual(await messages(ana.page), ["Ana: one [pending]", "Ana: two [pending]", "Ana: three [pending]"]);
  await ana.context.setOffline(false);
  await waitForBadge(ana.page, "live");
  await waitForText(ben.page, "#log", "Ana: three");
  await ana.page.waitForFunction(() => [...document.querySelectorAll("#log li")].every((li) => li.dataset.status === "confirmed"));
  await new Promise((r) => setTimeout(r, 500)); // Anything doubled would show by now.
  assert.deepEqual(await messages(ben.page), ["Ana: one [confirmed]", "Ana: two [confirmed]", "Ana: three [confirmed]"]);
  assert.deepEqual(await messages(ana.page), ["Ana: one [confirmed]", "Ana: two [confirmed]", "Ana: three [confirmed]"]);
  await ana.context.close();
  await ben.context.close();
});

test("behind a proxy that refuses WebSocket, the client falls back to polling and everything works", async () => {
  const proxy = await startNginx("no-websocket.conf", port);
  try {
    const base = `http://127.0.0.1:${proxy.port}`;
    const started = Date.now();
    const ana = await openDemo(browser, base, { name: "Ana", room: "t:proxy", badge: "syncing" });
    await ana.page.waitForFunction(() => window.chorus?.state.state === "connected" && window.chorus.state.transport === "polling", null, { timeout: 10000 });
    console.log(`fell back to polling after ${Date.now() - started} ms (page load included)`);
    const forced = await openDemo(browser, base, { name: "Ben", room: "t:proxy", transport: "polling", badge: "syncing" });
    const direct = await openDemo(browser, `http://127.0.0.1:${port}`, { name: "Cy", room: "t:proxy" });
    await waitForText(ana.page, "#presence", "Cy");
    await send(ana.page, "via polling");
    await send(forced.page, "forced polling");
    await send(direct.page, "via websocket");
    for (const { page } of [ana, forced, direct]) {
      for (const text of ["Ana: via polling", "Ben: forced polling", "Cy: via websocket"]) await waitForText(page, "#log", text);
    }
    await forced.page.type("#text", "x");
    await waitForText(direct.page, "#typing", "ben is typing");
    // The fallback is remembered: after a reload the page goes straight to polling, without
    // trying (and waiting for) a WebSocket first.
    assert.ok(await ana.page.evaluate(() => Object.keys(localStorage).find((key) => key.startsWith("chorus:Ana:") && key.endsWith(":chorus.transport"))));
    const sockets = [];
    ana.page.on("websocket", (ws) => sockets.push(ws.url()));
    await ana.page.reload();
    await ana.page.waitForFunction(() => window.chorus?.state.state === "connected" && window.chorus.state.transport === "polling", null, { timeout: 10000 });
    await waitForText(ana.page, "#log", "Cy: via websocket");
    assert.deepEqual(sockets, []);
    for (const { context } of [ana, forced, direct]) await context.close();
  } finally {
    await proxy.stop();
  }
});

test("killing and restarting the server: pages come back Live, and a page reloaded meanwhile keeps its outbox", async () => {
  const front = await startNginx("front.conf", port);
  try {
    const base = `http://127.0.0.1:${front.port}`;
    const ana = await openDemo(browser, base, { name: "Ana", room: "t:restart" });
    const ben = await openDemo(browser, base, { name: "Ben", room: "t:restart" });
    await send(ben.page, "before");
    await waitForText(ana.page, "#log", "Ben: before");
    await stopServer(server, "SIGKILL");
    await waitForBadge(ana.page, "syncing");
    await send(ana.page, "while down");
    await send(ben.page, "ben while down");
    await waitForText(ana.page, "#queued", "1 waiting to be sent");
    // Reload while the server is down: the page comes from nginx, the outbox from localStorage.
    await ana.page.reload();
    await ana.page.waitForFunction(() => document.querySelector("#log li")?.textContent === "Ana: while down");
    assert.deepEqual(await messages(ana.page), ["Ana: while down [pending]"]);
    server = await startServer(port, dir); // Same port, same SQLite file.
    await waitForBadge(ana.page, "live", 20000);
    await waitForBadge(ben.page, "live", 20000);
    await waitForText(ben.page, "#log", "Ana: while down");
    await waitForText(ana.page, "#log", "Ben: ben while down");
    await ana.page.waitForFunction(() => [...document.querySelectorAll("#log li")].every((li) => li.dataset.status === "confirmed"));
    await new Promise((r) => setTimeout(r, 500));
    const benLines = await messages(ben.page);
    assert.equal(benLines.length, 3, `each message once: ${benLines}`);
    assert.ok(benLines.includes("Ana: while down [confirmed]") && benLines.includes("Ben: ben while down [confirmed]"));
    for (const { context } of [ana, ben]) await context.close();
  } finally {
    await front.stop();
  }
});
