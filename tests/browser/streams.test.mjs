// A streamed answer between pages (the npm package through the plain-JS demo): one page asks
// ("/ask"), and plays the assistant streaming the answer word by word; another page sees it
// grow, a page opened mid-stream gets everything so far first, and every page ends with the
// one stored answer, which a reload shows from history.
import assert from "node:assert/strict";
import { test } from "node:test";
import { messages, mint, openDemo, serverAndBrowser } from "./harness.mjs";

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

const ANSWER =
  "Assistant (to Ana): You asked: what is chorus?. Chorus streams this answer to everyone in the room, token by token, and stores it once it is complete.";

const lineOf = (page) => page.evaluate(() => {
  const li = [...document.querySelectorAll("#log li")].find((item) => item.textContent.startsWith("Assistant"));
  return li ? { text: li.textContent, status: li.dataset.status } : null;
});

test("a streamed answer grows on every page, reaches a page opened mid-stream whole, and is stored once", async () => {
  const ana = await openDemo(browser, base, { name: "Ana", room: "t:ask" });
  const ben = await openDemo(browser, base, { name: "Ben", room: "t:ask" });
  await ana.page.fill("#text", "/ask what is chorus?");
  await ana.page.press("#text", "Enter");
  // Ben sees the answer while it streams: a part of it, marked streaming.
  await ben.page.waitForFunction(() => document.querySelector('#log li[data-status="streaming"]')?.textContent.includes("streams this"), null, { timeout: 15000 });
  const partial = await lineOf(ben.page);
  assert.equal(partial.status, "streaming");
  assert.ok(ANSWER.startsWith(partial.text), partial.text);
  assert.ok(partial.text.length < ANSWER.length);
  // Cy opens the room mid-stream: everything so far at once, then the rest.
  const cy = await openDemo(browser, base, { name: "Cy", room: "t:ask" });
  const first = await cy.page.waitForFunction(() => document.querySelector("#log li")?.textContent, null, { timeout: 10000 });
  assert.ok((await first.jsonValue()).length >= partial.text.length, "everything so far, first");
  for (const page of [ana.page, ben.page, cy.page]) {
    await page.waitForFunction(() => document.querySelector('#log li[data-status="confirmed"]'), null, { timeout: 20000 });
    assert.deepEqual(await messages(page), [`${ANSWER} [confirmed]`]);
  }
  // Stored once: a reload shows it from history.
  await ben.page.reload();
  await ben.page.waitForFunction(() => document.querySelector('#log li[data-status="confirmed"]'), null, { timeout: 15000 });
  assert.deepEqual(await messages(ben.page), [`${ANSWER} [confirmed]`]);
  const history = await (await fetch(`${base}/v1/rooms/t%3Aask/events`, { headers: { authorization: `Bearer ${mint("tester", 3600)}` } })).json();
  assert.equal(history.events.length, 1);
  assert.equal(history.events[0].body.stream, "text");
  for (const page of [ana, ben, cy]) await page.context.close();
});
