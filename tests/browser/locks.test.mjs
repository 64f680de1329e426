// Locks (leases) between two pages of the Leptos app in real Chromium against the real server:
// the holder's badge on both pages, the composer disabled for the other user, a refused request
// naming the holder, and the lock passing on once released. (The wire rules themselves, over
// both transports, are server/tests/locks.rs.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { serverAndBrowser } from "./harness.mjs";

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
