// One connection per browser for all tabs (ARCHITECTURE.md, "Tabs sharing one connection"):
// pages of one browser context share ONE WebSocket (counted from Playwright's `websocket`
// events), each tab stays a connection of its own in presence; when the leading tab closes or
// crashes while every tab publishes, another tab takes over and every message reaches an
// observer exactly once, in each sender's order (a closed tab's pending publishes are sent by
// the next tab that starts; a crashed tab's by a tab that starts once its lease is 15 s old).
// `shareConnection: false`, and a browser without BroadcastChannel or Web Locks, give one
// socket per page. In polling mode the pages hold one long poll between them (`POST
// /v1/polls`, made by the leading page only), also across a takeover.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mint, serverAndBrowser } from "./harness.mjs";

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

/**
 * A browser context whose pages' WebSockets (`sockets`: [page name, url]) and polling requests
 * (`polls`: [page name, method, path, time]) are counted.
 */
async function counted(init) {
  const context = await browser.newContext();
  if (init) await context.addInitScript(init);
  return { context, sockets: [], polls: [] };
}

/**
 * Opens a page named `name` in `box`'s context running `window.client` as `user` in `room`
 * (meta `{ tab: name }`), recording every event of the room and every connection state with
 * its time; resolves once it is live.
 */
async function openTab(box, name, { user = "ana", room, share = true, transport = "websocket" }) {
  const page = await box.context.newPage();
  page.on("pageerror", (error) => console.error(`[${name}] ${error}`));
  page.on("websocket", (socket) => box.sockets.push([name, socket.url()]));
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith("/v1/poll")) box.polls.push([name, request.method(), path, Date.now()]);
  });
  await page.exposeFunction("mint", mint);
  await page.goto(`${base}/demo/`);
  await page.evaluate(
    async ([name, user, room, share, transport]) => {
      const { ChorusClient } = await import("/pkg/chorus.js");
      const client = (window.client = await ChorusClient.connect({ url: location.origin, token: await window.mint(user, 3600), shareConnection: share, transport }));
      window.events = [];
      window.states = [];
      client.on("state", (s) => window.states.push([Date.now(), s.state]));
      window.room = client.join(room, { meta: { tab: name } });
      window.room.on("event", (e) => window.events.push(e.body));
      if (client.state.state !== "connected") await new Promise((resolve) => client.on("state", (s) => s.state === "connected" && resolve()));
    },
    [name, user, room, share, transport],
  );
  page.name = name;
  return page;
}

/** The observer: its own context and socket, collecting the room's events. */
async function observer(room) {
  const box = await counted();
  const page = await openTab(box, "observer", { user: "olga", room, share: false });
  return { box, page, events: () => page.evaluate(() => window.events) };
}

/** Starts `count` publishes of `{ tab, n }` in `page`, one every `gap` ms; `window.done` settles when all are acked. */
function publishLoop(page, count, gap) {
  return page.evaluate(
    ([name, count, gap]) => {
      window.done = (async () => {
        const acks = [];
        for (let n = 0; n < count && !window.halt; n++) {
          acks.push(window.room.publish({ tab: name, n }));
          window.count = n + 1;
          await new Promise((resolve) => setTimeout(resolve, gap));
        }
        return Promise.all(acks);
      })();
    },
    [page.name, count, gap],
  );
}

async function until(check, what, timeout = 20000) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Each sender tab's `n`s in the order the observer got them. */
function bySender(events) {
  const got = {};
  for (const { tab, n } of events) (got[tab] ??= []).push(n);
  return got;
}

const range = (count) => [...Array(count).keys()];

test("five tabs in one context share one WebSocket and show as five connections of the user", async () => {
  const box = await counted();
  const pages = [];
  for (const name of ["t0", "t1", "t2", "t3", "t4"]) pages.push(await openTab(box, name, { room: "tabs:five" }));
  assert.deepEqual(box.sockets.map(([name, url]) => [name, url.replace(base.replace("http", "ws"), "")]), [["t0", "/v1/ws"]], "one socket, opened by the first tab (the leader)");
  const presence = await until(
    () => pages[4].evaluate(() => window.room.presence()).then((users) => users[0]?.conns.length === 5 && users),
    "five connections in presence",
  );
  assert.deepEqual(presence.map((u) => u.user), ["ana"]);
  assert.deepEqual(presence[0].conns.map((c) => c.meta.tab).sort(), ["t0", "t1", "t2", "t3", "t4"]);
  // Each tab publishes and receives on its own logical connection.
  await pages[3].evaluate(() => window.room.publish({ from: "t3" }));
  for (const page of pages) await until(() => page.evaluate(() => window.events.some((e) => e.from === "t3")), `${page.name} gets t3's event`);
  assert.equal(box.sockets.length, 1);
  await box.context.close();
});

test("five polling-only tabs hold one long poll between them and show as five connections", async () => {
  const box = await counted();
  const pages = [];
  for (const name of ["t0", "t1", "t2", "t3", "t4"]) pages.push(await openTab(box, name, { room: "tabs:poll", transport: "polling" }));
  const presence = await until(
    () => pages[4].evaluate(() => window.room.presence()).then((users) => users[0]?.conns.length === 5 && users),
    "five connections in presence",
  );
  assert.deepEqual(presence[0].conns.map((c) => c.meta.tab).sort(), ["t0", "t1", "t2", "t3", "t4"]);
  await pages[3].evaluate(() => window.room.publish({ from: "t3" }));
  for (const page of pages) await until(() => page.evaluate(() => window.events.some((e) => e.from === "t3")), `${page.name} gets t3's event`);
  assert.equal(box.sockets.length, 0);
  assert.deepEqual(pollers(box, 0), ["t0 POST /v1/polls"], "every long poll goes through the leader");
  await box.context.close();
});

/**
 * The long polls of a polling context after `from` (an index into `box.polls`): the pages that
 * made them, each once.
 */
function pollers(box, from) {
  const held = box.polls.slice(from).filter(([, method, path]) => method === "GET" || path === "/v1/polls");
  return [...new Set(held.map(([name, method, path]) => `${name} ${method} ${path}`))];
}

/**
 * Polling: after the leader (t0) went at `since` (its `what`: close or crash), exactly one other
 * page holds the long polls (t0 may have made a last request as it went); logs when it first did.
 */
function oneNewPoller(box, from, since, what) {
  assert.equal(box.sockets.length, 0);
  const after = pollers(box, from).filter((poller) => !poller.startsWith("t0 "));
  assert.equal(after.length, 1, `one page polls after the ${what}: ${JSON.stringify(after)}`);
  assert.match(after[0], /^t[1-4] POST \/v1\/polls$/);
  const first = box.polls.slice(from).find(([name, , path]) => name !== "t0" && path === "/v1/polls")[3];
  console.log(`takeover after the leader's ${what} (polling): the new leader's first request ${first - since} ms after it`);
}

/** Logs when each surviving tab was connected again after `since`, if it ever left. */
async function logReconnects(survivors, since, what, transport) {
  const back = await Promise.all(survivors.map((page) => page.evaluate((t) => window.states.find(([at, state]) => at > t && state === "connected")?.[0], since)));
  const each = back.map((at) => (at ? `${at - since} ms after the ${what}` : "never (it stayed connected)"));
  console.log(`takeover after the leader's ${what} (${transport}): each tab connected again ${each.join(", ")}`);
}

for (const transport of ["websocket", "polling"])
test(`closing the leading tab while all five publish (${transport}): another leads, every message arrives once and in order`, async () => {
  const room = `tabs:close-${transport}`;
  const watch = await observer(room);
  const box = await counted();
  const pages = [];
  for (const name of ["t0", "t1", "t2", "t3", "t4"]) pages.push(await openTab(box, name, { room, transport }));
  const COUNT = 40;
  for (const page of pages) await publishLoop(page, COUNT, 25);
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The leader stops its loop with a burst of publishes still unacknowledged, and closes.
  const leaderCount = await pages[0].evaluate((name) => {
    window.halt = true;
    for (let n = window.count; n < window.count + 5; n++) window.room.publish({ tab: name, n });
    return window.count + 5;
  }, "t0");
  const closedAt = Date.now();
  const pollsBefore = box.polls.length;
  await pages[0].close();
  const survivors = pages.slice(1);
  await Promise.all(survivors.map((page) => page.evaluate(() => window.done)));
  // The closed tab's unacknowledged publishes wait in its storage: a tab that starts sends them.
  const reopened = await openTab(box, "t0-again", { room, transport });
  let seen;
  const got = await until(async () => {
    const got = (seen = bySender(await watch.events()));
    return ["t1", "t2", "t3", "t4"].every((tab) => got[tab]?.length >= COUNT) && got.t0?.length >= leaderCount && got;
  }, "every message at the observer").catch((error) => {
    throw new Error(`${error.message}: ${JSON.stringify(seen)}`);
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const final = bySender(await watch.events());
  for (const tab of ["t1", "t2", "t3", "t4"]) assert.deepEqual(final[tab], range(COUNT), `${tab}'s messages once each, in order`);
  assert.deepEqual(final.t0, range(leaderCount), "the closed leader's messages once each, in order");
  assert.deepEqual(got.t1, range(COUNT));
  if (transport === "websocket") {
    // One new socket: the new leader's; the tabs reconnected through it.
    const after = box.sockets.slice(1);
    assert.equal(after.length, 1, `one socket after the takeover: ${JSON.stringify(box.sockets)}`);
  } else {
    // t0-again joined later, and follows the new leader.
    oneNewPoller(box, pollsBefore, closedAt, "close");
  }
  await logReconnects(survivors, closedAt, "close", transport);
  await reopened.close();
  await box.context.close();
  await watch.box.context.close();
});

for (const transport of ["websocket", "polling"])
test(`crashing the leading tab (${transport}): another leads and nothing the others publish is lost or doubled`, async () => {
  const room = `tabs:crash-${transport}`;
  const watch = await observer(room);
  const box = await counted();
  const pages = [];
  for (const name of ["t0", "t1", "t2", "t3", "t4"]) pages.push(await openTab(box, name, { room, transport }));
  const COUNT = 30;
  for (const page of pages) await publishLoop(page, COUNT, 25);
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The leader stops with a burst still unacknowledged, and its renderer dies at once.
  const leaderCount = await pages[0].evaluate((name) => {
    window.halt = true;
    for (let n = window.count; n < window.count + 5; n++) window.room.publish({ tab: name, n });
    return window.count + 5;
  }, "t0");
  const crashedAt = Date.now();
  const pollsBefore = box.polls.length;
  // The renderer dies: no pagehide, no unload, no goodbye on the socket.
  const cdp = await box.context.newCDPSession(pages[0]);
  const crashed = new Promise((resolve) => pages[0].once("crash", resolve));
  cdp.send("Page.crash").catch(() => {});
  await crashed;
  const survivors = pages.slice(1);
  await Promise.all(survivors.map((page) => page.evaluate(() => window.done)));
  await until(async () => {
    const got = bySender(await watch.events());
    return ["t1", "t2", "t3", "t4"].every((tab) => got[tab]?.length >= COUNT);
  }, "the survivors' messages at the observer");
  await new Promise((resolve) => setTimeout(resolve, 300));
  const final = bySender(await watch.events());
  for (const tab of ["t1", "t2", "t3", "t4"]) assert.deepEqual(final[tab], range(COUNT), `${tab}'s messages once each, in order`);
  // What the crashed tab got stored arrived once, in order (the rest waits in its storage).
  assert.deepEqual(final.t0, range(final.t0?.length ?? 0));
  if (transport === "websocket") assert.equal(box.sockets.length, 2, `the crashed leader's socket and the new leader's: ${JSON.stringify(box.sockets)}`);
  else oneNewPoller(box, pollsBefore, crashedAt, "crash");
  await logReconnects(survivors, crashedAt, "crash", transport);
  // The crashed tab's lease was never removed: once it is older than 15 s, a tab that starts
  // takes its outbox over and sends the rest, each once.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, crashedAt + 15500 - Date.now())));
  const reopened = await openTab(box, "t0-again", { room, transport });
  await until(async () => bySender(await watch.events()).t0?.length >= leaderCount, "the crashed tab's publishes, sent by a later tab");
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(bySender(await watch.events()).t0, range(leaderCount), "the crashed leader's messages once each, in order");
  await reopened.close();
  await box.context.close();
  await watch.box.context.close();
});

test("shareConnection: false, or no BroadcastChannel or Web Locks, gives each page its own socket", async () => {
  const box = await counted();
  for (const name of ["a", "b", "c"]) await openTab(box, name, { room: "tabs:own", share: false });
  assert.deepEqual(box.sockets.map(([name]) => name), ["a", "b", "c"]);
  await box.context.close();
  const old = await counted(() => delete window.BroadcastChannel);
  for (const name of ["a", "b"]) await openTab(old, name, { room: "tabs:own" });
  assert.deepEqual(old.sockets.map(([name]) => name), ["a", "b"]);
  await old.context.close();
  const unlocked = await counted(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined }));
  for (const name of ["a", "b"]) await openTab(unlocked, name, { room: "tabs:own" });
  assert.deepEqual(unlocked.sockets.map(([name]) => name), ["a", "b"]);
  await unlocked.context.close();
});
