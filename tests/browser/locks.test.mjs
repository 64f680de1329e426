// Locks (leases) between two pages in real Chromium against the real server, through the npm
// package's JS API: page 1 takes the lock, page 2 sees who holds it (the `lock` event and
// room.locks()) and is refused with `lock_held`, page 1 releases and page 2 gets it with a
// greater fencing token; page 1's fenced publish under its old grant is then refused with
// `lock_lost`, and nothing is stored. Then the Leptos app: a holder's badge and a disabled
// composer on the other page.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { freePort, launchBrowser, startServer, stopServer, tempDir } from "./harness.mjs";

let browser;
let server;
let base;
const dir = tempDir();

before(async () => {
  const port = await freePort();
  server = await startServer(port, dir);
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopServer(server);
});

/** A page on the server's origin with a client for `name` (a dev token) in `window.chorus`. */
async function openClient(name, room, transport) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.goto(`${base}/demo/`);
  await page.evaluate(
    async ({ name, room, transport }) => {
      const { ChorusClient } = await import("/pkg/chorus.js");
      const answer = await fetch("/v1/dev/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
      const { token } = await answer.json();
      const client = await ChorusClient.connect({ url: location.origin, token, transport });
      const joined = client.join(room);
      const seen = [];
      joined.on("lock", (change) => seen.push(change.locks));
      await new Promise((ok) => joined.on("joined", ok));
      window.chorus = { client, room: joined, seen };
    },
    { name, room, transport },
  );
  return { context, page };
}

/** Waits until the page's room lists a lock `name` held by `user` (or none, `user` null). */
async function waitForHolder(page, name, user) {
  await page.waitForFunction(
    ({ name, user }) => {
      const held = window.chorus.room.locks().find((l) => l.name === name);
      return user === null ? !held : held?.user === user;
    },
    { name, user },
    { timeout: 10000 },
  );
}

for (const transport of ["websocket", "polling"]) {
  test(`two pages share a lock over ${transport}: held, refused, released, taken, stale writes fenced off`, async () => {
    const room = `t:locks-${transport}`;
    const one = await openClient("Ana", room, transport);
    const two = await openClient("Ben", room, transport);

    const grant = await one.page.evaluate(async () => {
      const handle = await window.chorus.room.lock("title", { ttl: 20000 });
      window.chorus.handle = handle;
      return { name: handle.name, token: handle.token, user: handle.user, until: handle.until };
    });
    assert.equal(grant.user, "ana");
    assert.equal(grant.name, "title");
    assert.ok(grant.until > Date.now(), "until is in the future");

    // Page 2 sees who holds it, and until when, then is refused with who holds it.
    await waitForHolder(two.page, "title", "ana");
    const seenByTwo = await two.page.evaluate(async () => {
      const [held] = window.chorus.room.locks();
      const refused = await window.chorus.room.lock("title").then(
        () => null,
        (error) => ({ name: error.name, code: error.code, message: error.message }),
      );
      return { held, refused, lastEvent: window.chorus.seen.at(-1) };
    });
    assert.equal(seenByTwo.held.token, grant.token);
    assert.equal(seenByTwo.held.until, grant.until);
    assert.deepEqual(seenByTwo.lastEvent, [seenByTwo.held], "the `lock` event carries every lock held");
    assert.deepEqual(seenByTwo.refused && { name: seenByTwo.refused.name, code: seenByTwo.refused.code }, { name: "ChorusError", code: "lock_held" });
    assert.match(seenByTwo.refused.message, /held by ana/);

    // The holder writes under its grant.
    const fenced = await one.page.evaluate(() => window.chorus.room.publish({ text: "mine" }, { ifLock: window.chorus.handle }));
    assert.equal(fenced.seq, 1);

    // Page 1 releases; page 2 gets it with a greater token.
    const released = await one.page.evaluate(() => window.chorus.handle.release());
    assert.equal(released.token, grant.token);
    await waitForHolder(two.page, "title", null);
    const taken = await two.page.evaluate(async () => {
      const handle = await window.chorus.room.lock("title", { ttl: 20000 });
      return { token: handle.token, user: handle.user };
    });
    assert.equal(taken.user, "ben");
    assert.ok(taken.token > grant.token, "fencing tokens only grow");
    await waitForHolder(one.page, "title", "ben");

    // Page 1 is a stale holder now: its fenced publish is refused, nothing stored.
    const stale = await one.page.evaluate(() =>
      window.chorus.room.publish({ text: "stale" }, { ifLock: { name: "title", token: window.chorus.handle.token } }).then(
        () => "stored",
        (error) => `${error.name} ${error.code}`,
      ),
    );
    assert.equal(stale, "ChorusError lock_lost");
    const renewed = await one.page.evaluate(() => window.chorus.handle.renew().then(() => "renewed", (error) => error.code));
    assert.equal(renewed, "lock_lost");
    const history = await fetch(`${base}/v1/rooms/${encodeURIComponent(room)}/events`, {
      headers: { Authorization: `Bearer ${await devToken("Cy")}` },
    }).then((r) => r.json());
    assert.deepEqual(history.events.map((e) => e.body.text), ["mine"]);

    for (const { page, context } of [one, two]) {
      await page.evaluate(() => window.chorus.client.close());
      await context.close();
    }
  });
}

async function devToken(name) {
  const answer = await fetch(`${base}/v1/dev/token`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
  return (await answer.json()).token;
}

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
