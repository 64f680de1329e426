// Locks (leases) in real Chromium against the real server. The Leptos app between two pages:
// the holder's badge on both pages, the composer disabled for the other user, a refused request
// naming the holder, and the lock passing on once released. The npm package's locks entry
// (`@chorus/client/locks`) between two pages, one on WebSocket and one polling: acquire, a
// refusal, fencing, release, auto-renewal, a holder whose page goes, and its guards. (The wire
// rules themselves, over both transports, are server/tests/locks.rs.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { mint, serverAndBrowser } from "./harness.mjs";

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

test("the app shows who is editing and disables the composer for everyone else", async () => {
  const pages = [];
  for (const name of ["Ana", "Ben"]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`[page] ${error}`));
    await page.goto(`${base}/#room=locks-app`);
    await page.getByLabel("Your name").fill(name);
    await page.getByRole("button", { name: "Join" }).click();
    await page.waitForSelector(".badge[data-badge=live]", { timeout: 15000 });
    pages.push({ context, page });
  }
  const [ana, ben] = pages.map((p) => p.page);
  await ana.click(".lock-button");
  await ana.waitForFunction(() => document.querySelector(".lock-badge")?.textContent.startsWith("You are editing until"));
  await ben.waitForFunction(() => /^Ana is editing until \d\d:\d\d$/.test(document.querySelector(".lock-badge")?.textContent ?? ""), null, { timeout: 10000 });
  assert.equal(await ben.isDisabled("#message"), true, "Ben's composer is read-only");
  assert.equal(await ana.isDisabled("#message"), false);
  // Ben asks anyway: refused, with who holds it.
  await ben.click(".lock-button");
  await ben.waitForFunction(() => /held by ana/.test(document.querySelector(".notice")?.textContent ?? ""));
  await ana.fill("#message", "under the lock");
  await ana.press("#message", "Enter");
  await ben.waitForFunction(() => document.body.textContent.includes("under the lock"));
  await ana.click(".lock-button"); // "Done editing"
  await ben.waitForFunction(() => !document.querySelector("#message").disabled, null, { timeout: 10000 });
  await ben.click(".lock-button");
  await ana.waitForFunction(() => /^Ben is editing until/.test(document.querySelector(".lock-badge")?.textContent ?? ""), null, { timeout: 10000 });
  assert.equal(await ana.isDisabled("#message"), true);
  for (const { context } of pages) await context.close();
});

/** A page on the server's origin with a client of the locks entry in `window.c` and room `room` in `window.r`. */
async function locksPage(user, room, transport) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.goto(`${base}/demo/`);
  await page.evaluate(
    async ({ token, room, transport }) => {
      const { connect, locks } = await import("/pkg/locks.js");
      window.c = await connect({ url: location.origin, token, transport });
      window.r = c.join(room);
      window.l = locks(r);
      window.changes = [];
      l.onChange((grants) => changes.push(grants));
      window.tried = (promise) => promise.then((value) => ({ value }), (error) => ({ code: error.code, message: error.message }));
      await new Promise((joined) => r.on("joined", joined));
    },
    { token: mint(user, 3600), room, transport },
  );
  return { context, page };
}

test("the npm locks entry: acquire, refusal, fencing, release and hand-over between a WebSocket and a polling page", async () => {
  const ana = await locksPage("ana", "t:npm-locks", "websocket");
  const ben = await locksPage("ben", "t:npm-locks", "polling");
  const grant = await ana.page.evaluate(() => l.acquire("title", { ttlMs: 30000 }));
  assert.equal(grant.name, "title");
  assert.equal(grant.user, "ana");
  assert.ok(grant.token > 0 && grant.until > Date.now());
  // Ben (polling) sees who holds it, and is refused with a clear code.
  await ben.page.waitForFunction(() => l.holder("title")?.user === "ana", null, { timeout: 10000 });
  assert.deepEqual(await ben.page.evaluate(() => l.holder("title")), grant);
  const refused = await ben.page.evaluate(() => tried(l.acquire("title")));
  assert.equal(refused.code, "lock_held");
  assert.match(refused.message, /held by ana/);
  // Ana's fenced publish is stored; Ben's, stating Ana's grant, is refused and nothing stored.
  const stored = await ana.page.evaluate((g) => l.publish({ title: "v2" }, g), grant);
  assert.ok(stored.seq >= 1);
  const fencedOut = await ben.page.evaluate((g) => tried(l.publish({ title: "stolen" }, g)), grant);
  assert.equal(fencedOut.code, "lock_lost");
  // Released: Ben gets it, with a higher fencing token; Ana's old grant now fences her out.
  const released = await ana.page.evaluate((g) => l.release(g), grant);
  assert.equal(released.token, grant.token);
  const bens = await ben.page.evaluate(() => l.acquire("title"));
  assert.equal(bens.user, "ben");
  assert.ok(bens.token > grant.token, "fencing tokens increase");
  const stale = await ana.page.evaluate((g) => tried(l.publish({ title: "stale" }, g)), grant);
  assert.equal(stale.code, "lock_lost");
  await ana.page.waitForFunction(() => l.holder("title")?.user === "ben", null, { timeout: 10000 });
  const history = await (await fetch(`${base}/v1/rooms/t%3Anpm-locks/events`, { headers: { authorization: `Bearer ${mint("tester", 3600)}` } })).json();
  assert.deepEqual(history.events.map((e) => e.body.title), ["v2"]);
  // Every change reached both pages' onChange, ending with Ben's grant alone.
  for (const { page } of [ana, ben]) {
    const last = await page.evaluate(() => changes.at(-1));
    assert.deepEqual(last.map((g) => g.user), ["ben"]);
  }
  for (const { context } of [ana, ben]) await context.close();
});

test("the npm locks entry: a short grant is renewed by itself, and ends once its holder's page is gone", async () => {
  const ana = await locksPage("ana", "t:npm-renew", "auto");
  const ben = await locksPage("ben", "t:npm-renew", "auto");
  const grant = await ana.page.evaluate(() => l.acquire("slide", { ttlMs: 1500 }));
  // Three TTLs later it is still Ana's, with the same token and a later `until`.
  await ana.page.waitForTimeout(4500);
  const now = await ben.page.evaluate(() => l.holder("slide"));
  assert.equal(now?.token, grant.token);
  assert.ok(now.until > grant.until, "renewed");
  // Ana's page goes (no release): the grant ends within the presence grace, and Ben can take it.
  await ana.context.close();
  await ben.page.waitForFunction(() => !l.holder("slide"), null, { timeout: 15000 });
  const bens = await ben.page.evaluate(() => l.acquire("slide"));
  assert.ok(bens.token > grant.token);
  await ben.context.close();
});

test("the npm locks entry: bad names are refused with invalid_lock, and a page that loaded the core module first gets a TypeError", async () => {
  const ana = await locksPage("ana", "t:npm-guards", "auto");
  const bad = await ana.page.evaluate(() => tried(l.acquire("no spaces allowed")));
  assert.equal(bad.code, "invalid_lock");
  assert.match(bad.message, /name/);
  assert.equal((await ana.page.evaluate(() => tried(l.acquire("x", { ttlMs: 1.5 })))).code, "invalid_lock");
  // A TTL of the right shape but out of range: the server's refusal.
  const zero = await ana.page.evaluate(() => tried(l.acquire("x", { ttlMs: 0 })));
  assert.equal(zero.code, "bad_frame");
  assert.match(zero.message, /ttl_ms must be between 1 and 3600000/);
  // A room object of a room this client never joined (or left).
  const notJoined = await ana.page.evaluate(() => {
    const other = c.join("t:npm-left");
    other.leave();
    return tried(new l.constructor(other).acquire("x"));
  });
  assert.equal(notJoined.code, "not_joined");
  // A request still waiting when the client closes rejects with `closed`.
  const closed = await ana.page.evaluate(() => {
    const waiting = tried(l.acquire("late"));
    c.close();
    return waiting;
  });
  assert.equal(closed.code, "closed");
  await ana.context.close();
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/demo/`);
  const message = await page.evaluate(async (token) => {
    await (await import("/pkg/chorus.js")).load();
    const { connect } = await import("/pkg/locks.js");
    return connect({ url: location.origin, token }).then(() => "connected", (error) => `${error.name}: ${error.message}`);
  }, mint("cy", 3600));
  assert.match(message, /^TypeError: this page loaded the Chorus module without locks/);
  await context.close();
});
