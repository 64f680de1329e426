// The Leptos app (app/, served at /) in a real browser (Debian chromium), two contexts.
// Screenshots of each state land in tests/artifacts/app/ (gitignored) for reviewers.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { root, serverAndBrowser } from "./harness.mjs";

const shots = join(root, "tests/artifacts/app");
mkdirSync(shots, { recursive: true });

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

/** Opens the app in a fresh context, signs in as `name` and opens `room`. */
async function openApp(name, room, viewport = { width: 1000, height: 720 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[${name}] ${error}`));
  await page.goto(`${base}/#room=${room}`);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join" }).click();
  await badge(page, "live");
  return { context, page };
}

const badge = (page, state, timeout = 15000) =>
  page.waitForSelector(`.badge[data-badge=${state}]`, { timeout });

const until = (page, fn, arg, timeout = 10000) => page.waitForFunction(fn, arg, { timeout });

/** The feed as "author: text [state]" lines. */
const feed = (page) =>
  page.$$eval(".feed .message", (items) =>
    items.map((li) => `${li.querySelector(".author").textContent}: ${li.querySelector(".text").textContent} [${li.className.replace("message ", "")}]`),
  );

async function send(page, text) {
  await page.getByRole("textbox", { name: "Message", exact: true }).fill(text);
  await page.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
}

const shoot = (page, file) => page.screenshot({ path: join(shots, file), fullPage: true });

test("the app: avatars, typing, offline with pending count, back online delivers and turns Live", async () => {
  const ana = await openApp("Ana Lima", "design");
  // Ben is on a phone-width screen.
  const ben = await openApp("Ben", "design", { width: 390, height: 760 });
  try {
    // Both see both avatars, with initials and a name tooltip.
    for (const { page } of [ana, ben]) {
      await until(page, () => document.querySelectorAll(".presence .avatar:not(.more)").length === 2);
      const initials = await page.$$eval(".presence .initials", (spans) => spans.map((s) => s.textContent).sort());
      assert.deepEqual(initials, ["AL", "B"]);
    }
    assert.match(await ana.page.getAttribute('.presence .avatar[title^="Ben"]', "title"), /^Ben · active · here for/);
    await shoot(ana.page, "1-both-live.png");
    await shoot(ben.page, "1-both-live-phone.png");

    // Typing shows on the other page, then clears when the message is sent.
    await ben.page.getByRole("textbox", { name: "Message", exact: true }).fill("hel");
    await until(ana.page, () => document.querySelector(".typing-text")?.textContent === "Ben is typing…");
    await shoot(ana.page, "2-typing.png");
    await send(ben.page, "hello from Ben");
    await until(ana.page, () => !document.querySelector(".typing-text"));
    await until(ana.page, () => document.querySelector(".feed")?.textContent.includes("hello from Ben"));

    // Offline: the badge says so, messages are pending with a count.
    await ana.context.setOffline(true);
    await badge(ana.page, "offline");
    await send(ana.page, "one");
    await send(ana.page, "two");
    await until(ana.page, () => document.querySelector(".badge-detail")?.textContent === "2 pending");
    assert.deepEqual((await feed(ana.page)).slice(-2), ["Ana Lima: one [pending]", "Ana Lima: two [pending]"]);
    await shoot(ana.page, "3-offline-pending.png");

    // Back online: Live again, both confirmed, Ben gets each exactly once, in order.
    await ana.context.setOffline(false);
    await badge(ana.page, "live");
    await until(ana.page, () => document.querySelectorAll(".feed .message.pending").length === 0);
    await until(ben.page, () => document.querySelector(".feed")?.textContent.includes("two"));
    const expected = ["Ben: hello from Ben [confirmed]", "Ana Lima: one [confirmed]", "Ana Lima: two [confirmed]"];
    assert.deepEqual(await feed(ana.page), expected);
    assert.deepEqual(await feed(ben.page), expected);
    assert.equal(await ana.page.textContent(".badge-detail"), "WebSocket");
    await shoot(ana.page, "4-back-live.png");
  } finally {
    await ana.context.close();
    await ben.context.close();
  }
});

test("a reload keeps the name and room, and the feed is refilled from history", async () => {
  const cleo = await openApp("Cleo", "launch");
  try {
    await send(cleo.page, "before reload");
    await until(cleo.page, () => document.querySelectorAll(".feed .message.confirmed").length === 1);
    await cleo.page.reload();
    await badge(cleo.page, "live");
    await until(cleo.page, () => document.querySelector(".feed")?.textContent.includes("before reload"));
    assert.deepEqual(await feed(cleo.page), ["Cleo: before reload [confirmed]"]);
    assert.equal(await cleo.page.textContent(".me"), "Cleo");
    assert.equal(await cleo.page.textContent('.room-link[aria-current="page"]'), "#launch");
    // Another room, then Back: the launch room and its feed again.
    await cleo.page.getByRole("button", { name: "#lobby" }).click();
    await until(cleo.page, () => document.querySelector(".room h2")?.textContent === "#lobby");
    await cleo.page.goBack();
    await until(cleo.page, () => document.querySelector(".room h2")?.textContent === "#launch");
    await until(cleo.page, () => document.querySelector(".feed")?.textContent.includes("before reload"));
  } finally {
    await cleo.context.close();
  }
});

test("past its token's expiry the app renews its dev token and keeps sending and receiving", async () => {
  // A session signed in with a 3-second token, as if saved by an earlier visit.
  const response = await fetch(`${base}/v1/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Dana", ttl_seconds: 3 }),
  });
  const short = await response.json();
  const context = await browser.newContext({ viewport: { width: 1000, height: 720 } });
  const session = JSON.stringify({ name: "Dana", user: short.user, token: short.token });
  await context.addInitScript((saved) => {
    if (!localStorage.getItem("chorus-app.session")) localStorage.setItem("chorus-app.session", saved);
  }, session);
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[Dana] ${error}`));
  await page.goto(`${base}/#room=expiry`);
  await badge(page, "live");
  const eve = await openApp("Eve", "expiry");
  try {
    await send(page, "before expiry");
    await until(eve.page, () => document.querySelector(".feed")?.textContent.includes("before expiry"));
    // The server closes the connection at the token's expiry (the tab's logical connection: the
    // page shares its socket); the app gets a fresh token for the same name (saved for the
    // next visit) and reconnects on it.
    await until(page, (old) => JSON.parse(localStorage.getItem("chorus-app.session")).token !== old, short.token, 15000);
    await badge(page, "live");
    await send(page, "after expiry");
    await until(page, () => document.querySelectorAll(".feed .message.confirmed").length === 2);
    await until(eve.page, () => document.querySelector(".feed")?.textContent.includes("after expiry"));
    assert.deepEqual(await feed(eve.page), ["Dana: before expiry [confirmed]", "Dana: after expiry [confirmed]"]);
    // And it receives past the expiry too.
    await send(eve.page, "hi Dana");
    await until(page, () => document.querySelector(".feed")?.textContent.includes("hi Dana"));
    assert.equal(await page.textContent(".me"), "Dana");
  } finally {
    await eve.context.close();
    await context.close();
  }
});

test("two tabs of the app share one WebSocket and keep each other's pending messages across reloads", async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 720 } });
  const sockets = [];
  const open = async (name) => {
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`[${name}] ${error}`));
    page.on("websocket", (socket) => sockets.push([name, new URL(socket.url()).pathname]));
    await page.goto(`${base}/#room=tabs`);
    return page;
  };
  const one = await open("one");
  await one.getByLabel("Your name").fill("Fay");
  await one.getByRole("button", { name: "Join" }).click();
  await badge(one, "live");
  // The second tab is signed in from the session the first one saved.
  const two = await open("two");
  await badge(two, "live");
  const gil = await openApp("Gil", "tabs");
  try {
    assert.deepEqual(sockets, [["one", "/v1/ws"]], "one socket for both tabs, the first tab's");
    // Both tabs cut off from the server (sockets refused, polls failed), both send, both reload.
    let cut = true;
    await context.routeWebSocket("**/v1/ws", (socket) => (cut ? socket.close() : socket.connectToServer()));
    await context.route("**/v1/poll**", (route) => (cut ? route.abort() : route.continue()));
    await one.evaluate(() => dispatchEvent(new Event("offline")));
    await two.evaluate(() => dispatchEvent(new Event("offline")));
    for (const [page, texts] of [[one, ["one a", "one b"]], [two, ["two a", "two b"]]]) for (const text of texts) await send(page, text);
    await send(one, "one c");
    const pending = (page) => page.$$eval(".feed .message.pending .text", (items) => items.map((item) => item.textContent));
    assert.deepEqual(await pending(one), ["one a", "one b", "one c"]);
    assert.deepEqual(await pending(two), ["two a", "two b"]);
    // Each reloaded tab has its own pending messages back (neither overwrote the other's). One
    // reloads and starts before two goes: a tab starting while the other's page is gone would
    // rightly adopt that tab's outbox too (tab_storage.rs), and this checks that it took only its own.
    await one.reload();
    await until(one, () => document.querySelectorAll(".feed .message.pending").length === 3);
    await two.reload();
    await until(two, () => document.querySelectorAll(".feed .message.pending").length === 2);
    assert.deepEqual(await pending(one), ["one a", "one b", "one c"]);
    assert.deepEqual(await pending(two), ["two a", "two b"]);
    cut = false;
    const texts = () => gil.page.$$eval(".feed .message .text", (items) => items.map((item) => item.textContent));
    await until(gil.page, () => document.querySelectorAll(".feed .message").length >= 5, undefined, 30000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const got = await texts();
    assert.deepEqual(got.filter((t) => t.startsWith("one")), ["one a", "one b", "one c"], "each message of tab one once, in order");
    assert.deepEqual(got.filter((t) => t.startsWith("two")), ["two a", "two b"], "each message of tab two once, in order");
    await until(one, () => document.querySelectorAll(".feed .message.pending").length === 0);
    await until(two, () => document.querySelectorAll(".feed .message.pending").length === 0);
  } finally {
    await gil.context.close();
    await context.close();
  }
});

test("signing out with messages pending drops them: another user signed in next never sends them", async () => {
  const hal = await openApp("Hal", "signout");
  const ivy = await openApp("Ivy", "signout");
  try {
    await hal.context.setOffline(true);
    await badge(hal.page, "offline");
    await send(hal.page, "never sent");
    await until(hal.page, () => document.querySelector(".badge-detail")?.textContent === "1 pending");
    const stored = () => hal.page.evaluate(() => Object.keys(localStorage).filter((key) => key.startsWith("chorus-app.") && key !== "chorus-app.session"));
    assert.ok((await stored()).length > 0, "the pending message is stored");
    await hal.page.getByRole("button", { name: "Sign out" }).click();
    await hal.page.getByLabel("Your name").waitFor();
    assert.deepEqual(await stored(), [], "nothing of Hal's is left in storage");
    // Back online, Jo signs in on the same browser: Hal's message is not sent, Jo's is.
    await hal.context.setOffline(false);
    await hal.page.getByLabel("Your name").fill("Jo");
    await hal.page.getByRole("button", { name: "Join" }).click();
    await badge(hal.page, "live");
    await send(hal.page, "from Jo");
    await until(ivy.page, () => document.querySelector(".feed")?.textContent.includes("from Jo"));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(await feed(ivy.page), ["Jo: from Jo [confirmed]"]);
    // And Hal signing in again later gets nothing back to send either.
    await hal.page.getByRole("button", { name: "Sign out" }).click();
    await hal.page.getByLabel("Your name").fill("Hal");
    await hal.page.getByRole("button", { name: "Join" }).click();
    await badge(hal.page, "live");
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(await feed(ivy.page), ["Jo: from Jo [confirmed]"]);
  } finally {
    await hal.context.close();
    await ivy.context.close();
  }
});
