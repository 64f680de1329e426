// Client storage shared by several tabs and several users (ARCHITECTURE.md, "Client storage"):
// two tabs of one user in ONE browser context (one localStorage) publish offline and reload, and
// every publish is delivered once; a second user on the same browser never sends the first one's
// publishes, which wait for the first user to come back; signing out with publishes queued drops
// them (never sent, nothing of the user left in localStorage) and the next user's go once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mint, serverAndBrowser } from "./harness.mjs";

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

async function openPage(context) {
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.exposeFunction("mint", mint);
  await page.goto(`${base}/demo/`);
  await page.evaluate(async () => (await import("/pkg/chorus.js")).load());
  return page;
}

/** Starts `window.client` as `user` (polling, so one route can hold all its traffic) in `room`. */
function start(page, user, room) {
  return page.evaluate(
    async ([user, room]) => {
      const { ChorusClient } = await import("/pkg/chorus.js");
      const client = (window.client = await ChorusClient.connect({ url: location.origin, token: await window.mint(user, 3600), transport: "polling" }));
      window.pending = [];
      window.rejected ??= [];
      window.own = [];
      window.seen = [];
      window.room = client.join(room);
      window.room.on("pending", (p) => window.pending.push(p.body.n));
      window.room.on("event", (e) => (e.own ? window.own : window.seen).push(e.body.n));
      await new Promise((resolve) => setTimeout(resolve, 100));
      return window.pending.slice();
    },
    [user, room],
  );
}

// Publishes `numbers`; a publish that rejects adds its error code to `window.rejected`.
const publish = (page, numbers) => page.evaluate((numbers) => numbers.forEach((n) => window.room.publish({ n }).catch((error) => window.rejected.push(error.code))), numbers);

async function history(page, room) {
  return page.evaluate(async (room) => (await window.client.join(room).history({ limit: 100 })).events.map((e) => e.body.n), room);
}

test("two tabs of one user publish offline, both reload, and every publish is delivered once", async () => {
  const context = await browser.newContext();
  const [a, b] = [await openPage(context), await openPage(context)];
  await context.setOffline(true);
  await start(a, "ana", "t:tabs");
  await start(b, "ana", "t:tabs");
  await publish(a, [1, 2, 3]);
  await publish(b, [11, 12, 13]);
  await publish(a, [4]);
  // Reloading needs the network: the route keeps the clients' polls from reaching the server.
  await context.route("**/v1/poll**", (route) => route.abort());
  await context.setOffline(false);
  // Each page starts its client as it loads, as an app does (a live tab's outbox is its own).
  const reload = async (page) => {
    await page.reload();
    await page.evaluate(async () => (await import("/pkg/chorus.js")).load());
    return start(page, "ana", "t:tabs");
  };
  assert.deepEqual(await reload(a), [1, 2, 3, 4], "each reloaded tab restores its own publishes");
  assert.deepEqual(await reload(b), [11, 12, 13]);
  const observer = await openPage(await browser.newContext());
  await start(observer, "obi", "t:tabs");
  await context.unroute("**/v1/poll**");
  await observer.waitForFunction(() => window.seen.length >= 7, null, { timeout: 20000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const seen = await observer.evaluate(() => window.seen.slice().sort((x, y) => x - y));
  assert.deepEqual(seen, [1, 2, 3, 4, 11, 12, 13], "every publish delivered once");
  assert.deepEqual((await history(observer, "t:tabs")).sort((x, y) => x - y), [1, 2, 3, 4, 11, 12, 13]);
  for (const page of [a, b]) assert.equal(await page.evaluate(() => window.client.queued), 0);
  await context.close();
});

test("another user on the same browser never sends the first user's publishes; they are held for that user", async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  const observer = await openPage(await browser.newContext());
  await start(observer, "obi", "t:users");
  await context.setOffline(true);
  await start(page, "ana", "t:users");
  await publish(page, [1, 2]);
  // Switching users without signing out: ana's publishes stay stored (held) for her.
  await page.evaluate(() => window.client.close());
  assert.deepEqual(await start(page, "bob", "t:users"), [], "bob is not shown ana's publishes");
  await publish(page, [3]);
  await context.setOffline(false);
  await observer.waitForFunction(() => window.seen.length >= 1, null, { timeout: 20000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(await observer.evaluate(() => window.seen), [3], "bob sent only his own");
  await page.evaluate(() => window.client.close());
  assert.deepEqual(await start(page, "ana", "t:users"), [1, 2], "ana's publishes waited for her");
  await observer.waitForFunction(() => window.seen.length >= 3, null, { timeout: 20000 });
  assert.deepEqual(await history(observer, "t:users"), [3, 1, 2]);
  await page.evaluate(() => window.client.close());
  await context.close();
});

test("signing out with publishes queued, then signing in as another user: the queued ones are dropped, never sent; the new user's are delivered once", async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  const observer = await openPage(await browser.newContext());
  await start(observer, "obi", "t:signout");
  await context.setOffline(true);
  await start(page, "ana", "t:signout");
  await publish(page, [1, 2]);
  assert.equal(await page.evaluate(() => window.client.queued), 2, "ana's publishes are queued");
  const rejected = await page.evaluate(async () => {
    window.client.signOut();
    await new Promise((resolve) => setTimeout(resolve, 0));
    return window.rejected.slice();
  });
  assert.deepEqual(rejected, ["closed", "closed"], "the queued publishes reject in the tab that signs out");
  const left = await page.evaluate(() => Object.keys(localStorage).filter((key) => key.includes("|ana|") || key.endsWith("|user")));
  assert.deepEqual(left, [], "nothing of ana's (nor the last user) is left in localStorage");
  // Still offline: bob signs in on the same page and queues his own.
  assert.deepEqual(await start(page, "bob", "t:signout"), [], "bob is not shown ana's publishes");
  await publish(page, [3, 4]);
  await context.setOffline(false);
  await observer.waitForFunction(() => window.seen.length >= 2, null, { timeout: 20000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(await observer.evaluate(() => window.seen), [3, 4], "bob's publishes, once each; none of ana's");
  assert.equal(await page.evaluate(() => window.client.queued), 0);
  // Ana coming back finds nothing to send: signing out dropped her publishes.
  await page.evaluate(() => window.client.close());
  assert.deepEqual(await start(page, "ana", "t:signout"), []);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  assert.deepEqual(await history(observer, "t:signout"), [3, 4]);
  await context.close();
});
