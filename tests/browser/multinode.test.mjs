// Two Chorus nodes on one Redis behind nginx round robin (no stickiness): pages whose sockets
// land on different nodes, and a polling-only page whose every request may land on either, see
// each other's presence, typing and messages.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { freePort, launchBrowser, messages, openDemo, startNginx, startRedis, startServer, stopServer, tempDir } from "./harness.mjs";

let browser;
let redis;
let nodes = [];
let ports = [];
let balancer;

before(async () => {
  redis = await startRedis();
  ports = [await freePort(), await freePort()];
  nodes = await Promise.all(ports.map((port) => startServer(port, tempDir(), { redis: redis.url })));
  balancer = await startNginx("round-robin.conf", ports);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await balancer?.stop();
  for (const node of nodes) await stopServer(node);
  await redis?.stop();
});

async function send(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

const waitForText = (page, selector, text, timeout = 15000) =>
  page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent.includes(t), [selector, text], { timeout });

/** Each node's open WebSocket count, from its own /metrics (not through the balancer). */
async function socketsPerNode() {
  return Promise.all(
    ports.map(async (port) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(text.match(/^chorus_connections (\d+)/m)[1]);
    }),
  );
}

test("pages on different nodes behind a round-robin balancer see each other; one page polls", async () => {
  const base = `http://127.0.0.1:${balancer.port}`;
  const ana = await openDemo(browser, base, { name: "Ana", room: "t:nodes" });
  // Round robin spreads the token requests and the sockets alike (a page asks for a token,
  // then opens its socket: two requests, so with two nodes every page's socket would land on
  // the same node). One more request through the balancer before each try shifts that.
  let cy;
  for (let attempt = 0; attempt < 6; attempt++) {
    await fetch(`${base}/healthz`);
    cy = await openDemo(browser, base, { name: "Cy", room: "t:nodes" });
    const counts = await socketsPerNode();
    if (counts.every((count) => count === 1)) break;
    await cy.context.close();
    cy = undefined;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(cy, "no page's socket landed on the second node");
  const ben = await openDemo(browser, base, { name: "Ben", room: "t:nodes", transport: "polling", badge: "syncing" });

  for (const [page, others] of [[ana.page, ["Ben", "Cy"]], [ben.page, ["Ana", "Cy"]], [cy.page, ["Ana", "Ben"]]]) {
    for (const name of others) await waitForText(page, "#presence", name);
  }
  await ana.page.type("#text", "hel");
  await waitForText(cy.page, "#typing", "ana is typing");
  await waitForText(ben.page, "#typing", "ana is typing");
  await ben.page.type("#text", "x");
  await waitForText(cy.page, "#typing", "ben is typing");

  // Each sends once the previous message reached the next sender, so the room's order is known.
  await send(ana.page, "from ana");
  await waitForText(ben.page, "#log", "Ana: from ana");
  await send(ben.page, "from ben");
  await waitForText(cy.page, "#log", "Ben: from ben");
  await send(cy.page, "from cy");
  for (const { page } of [ana, ben, cy]) {
    for (const text of ["Ana: from ana", "Ben: from ben", "Cy: from cy"]) await waitForText(page, "#log", text);
  }
  await new Promise((r) => setTimeout(r, 500)); // Anything doubled would show by now.
  const seen = await Promise.all([ana, ben, cy].map(({ page }) => messages(page)));
  for (const lines of seen) {
    assert.deepEqual(lines, ["Ana: from ana [confirmed]", "Ben: from ben [confirmed]", "Cy: from cy [confirmed]"]);
  }

  // A page that leaves is gone from the others' presence on both nodes.
  await cy.context.close();
  await ana.page.waitForFunction(() => !document.getElementById("presence").textContent.includes("Cy"), null, { timeout: 20000 });
  await ben.page.waitForFunction(() => !document.getElementById("presence").textContent.includes("Cy"), null, { timeout: 20000 });
  await ana.context.close();
  await ben.context.close();
});
