// `@chorus/client/react` in a real browser: a tiny React app (react-app/, in StrictMode) bundled
// by esbuild shows a room's feed, presence and typing through `useRoom`, publishes, and receives
// what another tab publishes.
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { build } from "esbuild";
import { freePort, launchBrowser, root, startServer, stopServer, tempDir } from "./harness.mjs";

const app = join(import.meta.dirname, "react-app");
const dir = tempDir();
const dist = join(dir, "dist");
let browser;
let server;
let base;

before(async () => {
  await build({
    entryPoints: [join(app, "main.jsx")],
    bundle: true,
    format: "esm",
    jsx: "automatic",
    outdir: dist,
    logLevel: "warning",
    // The package is a `file:` link (a symlink to pkg/): resolve `react` from here, as from an
    // installed copy.
    preserveSymlinks: true,
    define: { "process.env.NODE_ENV": '"development"' },
  });
  // esbuild leaves `new URL("chorus_bg.wasm", import.meta.url)` alone: the wasm goes next to the bundle.
  copyFileSync(join(root, "pkg/chorus_bg.wasm"), join(dist, "chorus_bg.wasm"));
  copyFileSync(join(app, "index.html"), join(dist, "index.html"));
  const port = await freePort();
  server = await startServer(port, dir, { demoDir: dist });
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopServer(server);
});

async function open(name, room) {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (error) => console.error(`[${name}] ${error}`));
  await page.goto(`${base}/demo/?name=${name}&room=${room}`);
  await page.waitForSelector("main[data-badge=live]", { timeout: 15000 });
  return page;
}

const texts = (page, list) => page.$$eval(`#${list} li`, (items) => items.map((li) => `${li.textContent}${li.dataset.status ? ` [${li.dataset.status}]` : ""}`));

test("useRoom shows the feed, presence and typing, publishes and receives", async () => {
  const ada = await open("Ada", "react:1");
  const bob = await open("Bob", "react:1");
  const both = async (page) => {
    await page.waitForFunction(() => document.querySelectorAll("#presence li").length === 2, null, { timeout: 15000 });
    return (await texts(page, "presence")).sort();
  };
  assert.deepEqual(await both(ada), ["Ada", "Bob"]);
  assert.deepEqual(await both(bob), ["Ada", "Bob"]);

  await ada.fill("#text", "hello from Ada");
  await bob.waitForFunction(() => document.getElementById("typing").textContent === "1 typing", null, { timeout: 15000 });
  await ada.click("#send");
  const stored = async (page, count) => {
    await page.waitForFunction((n) => document.querySelectorAll("#feed li[data-status=stored]").length === n, count, { timeout: 15000 });
    return texts(page, "feed");
  };
  assert.deepEqual(await stored(ada, 1), ["hello from Ada [stored]"]);
  assert.deepEqual(await stored(bob, 1), ["hello from Ada [stored]"]);
  await bob.waitForFunction(() => document.getElementById("typing").textContent === "", null, { timeout: 15000 });

  await bob.fill("#text", "hi Ada");
  await bob.click("#send");
  assert.deepEqual(await stored(ada, 2), ["hello from Ada [stored]", "hi Ada [stored]"]);

  // A page opened later loads the room's history into the feed.
  const cleo = await open("Cleo", "react:1");
  assert.deepEqual(await stored(cleo, 2), ["hello from Ada [stored]", "hi Ada [stored]"]);

  // Unmounting the last component using the room leaves it; mounting it again joins again.
  const present = (page, n) => page.waitForFunction((count) => document.querySelectorAll("#presence li").length === count, n, { timeout: 15000 });
  await present(ada, 3);
  await cleo.click("#toggle");
  await present(ada, 2);
  assert.deepEqual((await texts(ada, "presence")).sort(), ["Ada", "Bob"]);
  await cleo.click("#toggle");
  await present(ada, 3);
  assert.deepEqual(await stored(cleo, 2), ["hello from Ada [stored]", "hi Ada [stored]"]);
  for (const page of [ada, bob, cleo]) await page.context().close();
});
