// Live cursors in a real browser (Debian chromium): two pages of the plain-JS demo, one on a
// WebSocket and one polling, and two contexts of the Leptos app, each seeing the other's
// pointer over the shared surface with its name, until that page goes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { openDemo, serverAndBrowser } from "./harness.mjs";

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

/** Moves the mouse to `(fx, fy)`, fractions of the element `selector`. */
async function pointAt(page, selector, fx, fy) {
  const box = await page.locator(selector).boundingBox();
  await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy, { steps: 4 });
}

/** The cursor marks drawn on a page: `[{ name, left, top }]` (percentages of the surface). */
const marks = (page, selector) =>
  page.$$eval(selector, (items) => items.map((m) => ({ name: m.textContent.trim(), left: parseFloat(m.style.left), top: parseFloat(m.style.top) })));

const until = (page, fn, arg, timeout = 10000) => page.waitForFunction(fn, arg, { timeout });

test("demo pages on a WebSocket and on polling see each other's cursor, named, until the page goes", async () => {
  const ana = await openDemo(browser, base, { name: "Ana", room: "t:cursors", transport: "websocket" });
  // A polling connection shows "syncing" (docs: only a WebSocket is "live").
  const ben = await openDemo(browser, base, { name: "Ben", room: "t:cursors", transport: "polling", badge: "syncing" });
  try {
    await until(ana.page, () => document.getElementById("presence").textContent.includes("Ben"));
    await pointAt(ana.page, "#surface", 0.25, 0.5);
    await until(ben.page, () => document.querySelector("#surface .cursor")?.textContent === "Ana");
    // The last position always arrives (the throttle sends it at the end of its 50 ms).
    await until(ben.page, () => Math.abs(parseFloat(document.querySelector("#surface .cursor")?.style.top) - 50) < 6);
    const [seen] = await marks(ben.page, "#surface .cursor");
    assert.equal(seen.name, "Ana");
    assert.ok(Math.abs(seen.left - 25) < 3 && Math.abs(seen.top - 50) < 6, JSON.stringify(seen));

    // The polling page's pointer reaches the WebSocket page, and moves there.
    await pointAt(ben.page, "#surface", 0.8, 0.2);
    await until(ana.page, () => document.querySelector("#surface .cursor")?.textContent === "Ben");
    await pointAt(ben.page, "#surface", 0.6, 0.7);
    await until(ana.page, () => Math.abs(parseFloat(document.querySelector("#surface .cursor")?.style.left) - 60) < 3);

    // Ana's page goes: her cursor goes with her connection.
    await ana.context.close();
    await until(ben.page, () => document.querySelectorAll("#surface .cursor").length === 0, null, 15000);
  } finally {
    await ana.context.close().catch(() => {});
    await ben.context.close();
  }
});

test("the app's shared surface shows the other tab's pointer with the user's name and colour", async () => {
  const open = async (name) => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 720 } });
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`[${name}] ${error}`));
    await page.goto(`${base}/#room=cursors`);
    await page.getByLabel("Your name").fill(name);
    await page.getByRole("button", { name: "Join" }).click();
    await page.waitForSelector(".badge[data-badge=live]", { timeout: 15000 });
    return { context, page };
  };
  const ana = await open("Ana Lima");
  const ben = await open("Ben");
  try {
    await until(ana.page, () => document.querySelectorAll(".presence .avatar:not(.more)").length === 2);
    await pointAt(ana.page, ".surface", 0.5, 0.5);
    await until(ben.page, () => document.querySelector(".surface .cursor-mark .cursor-name")?.textContent === "Ana Lima");
    // The last position always arrives (the throttle sends it at the end of its 50 ms).
    await until(ben.page, () => /left: (49\.[5-9]|50\.[0-5])%; top: (49\.[5-9]|50\.[0-5])%/.test(document.querySelector(".surface .cursor-mark")?.getAttribute("style")));
    const style = await ben.page.getAttribute(".surface .cursor-mark", "style");
    assert.match(style, /--cursor-colour: hsl\(\d+, 55%, 42%\)/);
    await pointAt(ben.page, ".surface", 0.1, 0.9);
    await until(ana.page, () => document.querySelector(".surface .cursor-mark .cursor-name")?.textContent === "Ben");
    // Leaving the surface hides the pointer for the others.
    await ben.page.mouse.move(5, 5);
    await until(ana.page, () => document.querySelectorAll(".surface .cursor-mark").length === 0);
  } finally {
    await ana.context.close();
    await ben.context.close();
  }
});
