// Notices and the activity feed in a real browser (Debian chromium) against the real server:
// the Leptos app shows a backend notice as a banner and lists its room's activity (everyone's
// or only mine); the JS API gets `notice` events and filtered history pages.
import assert from "node:assert/strict";
import { test } from "node:test";
import { serverAndBrowser } from "./harness.mjs";

const KEY = "browser-test-backend-key";

let browser;
let base;
serverAndBrowser({ apiKey: KEY }, (env) => ({ browser, base } = env));

/** `POST path` with the backend API key; the parsed answer. */
async function backend(path, body) {
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  assert.equal(response.status, 200, JSON.stringify(answer));
  return answer;
}

/** Opens the Leptos app in a fresh context, signs in as `name` and opens `room`. */
async function openApp(name, room) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[${name}] ${error}`));
  await page.goto(`${base}/#room=${room}`);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await page.waitForSelector(".badge[data-badge=live]", { timeout: 15000 });
  return { context, page };
}

const activity = (page) =>
  page.$$eval(".activity-list li", (items) => items.map((li) => `${li.querySelector(".author").textContent}: ${li.querySelector(".text").textContent}`));

async function send(page, text) {
  await page.getByRole("textbox", { name: "Message", exact: true }).fill(text);
  await page.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
}

test("the app shows a backend notice as a banner, to everyone or to one user, until dismissed", async () => {
  const ana = await openApp("Ana", "notices");
  const ben = await openApp("Ben", "notices");
  const sent = await backend("/v1/notices", { id: "maint-1", level: "warning", body: { text: "Maintenance at 22:00 UTC" } });
  assert.equal(sent.id, "maint-1");
  for (const { page } of [ana, ben]) {
    const banner = page.locator(".backend-notice.warning");
    await banner.waitFor({ timeout: 10000 });
    assert.match(await banner.textContent(), /Maintenance at 22:00 UTC/);
  }
  await ana.page.locator(".backend-notice").getByRole("button", { name: "Dismiss" }).click();
  await ana.page.locator(".backend-notice").waitFor({ state: "detached" });

  // One user: Ben's page only.
  await backend("/v1/users/ben/notices", { id: "for-ben", level: "critical", body: "Your export is ready" });
  await ben.page.waitForSelector('.backend-notice.critical[data-id="for-ben"]', { timeout: 10000 });
  assert.match(await ben.page.locator(".backend-notice").textContent(), /Your export is ready/);
  assert.equal(await ana.page.locator(".backend-notice").count(), 0, "Ana got nothing");
  await ana.context.close();
  await ben.context.close();
});

test("the app's activity panel lists the room's messages, everyone's or only mine", async () => {
  const ana = await openApp("Ana", "activity");
  const ben = await openApp("Ben", "activity");
  await send(ana.page, "first from ana");
  await send(ben.page, "then ben");
  await send(ana.page, "ana again");
  await ana.page.waitForFunction(() => document.querySelectorAll(".activity-list li").length === 3, null, { timeout: 10000 });
  assert.deepEqual(await activity(ana.page), ["Ana: ana again", "Ben: then ben", "Ana: first from ana"], "newest first");
  await ana.page.getByLabel("Only mine").check();
  await ana.page.waitForFunction(() => document.querySelectorAll(".activity-list li").length === 2, null, { timeout: 10000 });
  assert.deepEqual(await activity(ana.page), ["Ana: ana again", "Ana: first from ana"]);
  await ana.context.close();
  await ben.context.close();
});

test("the JS API: client.on('notice') for one connection, and history filtered by type and user", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.goto(`${base}/demo/`);
  await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const { token } = await (await fetch("/v1/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Cid" }) })).json();
    const client = await ChorusClient.connect({ url: location.origin, token });
    window.notices = [];
    client.on("notice", (notice) => window.notices.push(notice));
    const room = client.join("t:feed");
    for (const [type, n] of [["comment", 1], ["like", 2], ["comment", 3], ["like", 4], ["comment", 5]]) await room.publish({ type, n });
    window.room = room;
  });
  // The backend finds the page's connection in the room's presence.
  const presence = await (await fetch(`${base}/v1/rooms/t:feed/presence`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  const conn = presence.users[0].conns[0].conn;
  await backend(`/v1/connections/${conn}/notices`, { id: "only-you", body: { text: "hi" } });
  await page.waitForFunction(() => window.notices.length === 1, null, { timeout: 10000 });
  const notice = await page.evaluate(() => window.notices[0]);
  assert.deepEqual({ ...notice, at: typeof notice.at }, { id: "only-you", level: "info", body: { text: "hi" }, at: "number" });

  const pages = await page.evaluate(async () => {
    const newest = await window.room.history({ type: "comment", limit: 2 });
    const older = await window.room.history({ type: "comment", limit: 2, before: newest.older });
    const likes = await window.room.history({ type: "like", after: 0 });
    const mine = await window.room.history({ user: "cid", limit: 10 });
    const all = [];
    for await (const p of window.room.historyPages({ type: "comment", limit: 1 })) all.push(...p.events.map((e) => e.body.n));
    return { newest: newest.events.map((e) => e.body.n), older: older.events.map((e) => e.body.n), olderOlder: older.older, likes: likes.events.map((e) => e.body.n), mine: mine.events.length, all };
  });
  assert.deepEqual(pages, { newest: [3, 5], older: [1], olderOlder: null, likes: [2, 4], mine: 5, all: [5, 3, 1] });
  await context.close();
});
