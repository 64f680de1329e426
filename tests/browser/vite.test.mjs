// The npm package as a TypeScript + Vite user consumes it: `tsc` checks vite-app/main.ts
// against chorus.d.ts, Vite bundles it (wasm asset included), and the built page publishes
// through the real server in Chromium.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { build } from "vite";
import { freePort, launchBrowser, startServer, stopServer, tempDir } from "./harness.mjs";

const app = join(import.meta.dirname, "vite-app");
const dir = tempDir();
const dist = join(dir, "dist");
let browser;
let server;
let base;

before(async () => {
  await build({ root: app, base: "/demo/", logLevel: "warn", build: { outDir: dist, emptyOutDir: true } });
  const port = await freePort();
  server = await startServer(port, dir, { demoDir: dist });
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopServer(server);
});

test("the typings accept the documented API and reject misuse (tsc --strict)", () => {
  const tsc = join(import.meta.dirname, "node_modules/typescript/bin/tsc");
  // Throws (and prints the diagnostics) if main.ts does not type-check, including when an
  // `@ts-expect-error` line is accepted by the typings.
  execFileSync(process.execPath, [tsc, "-p", app], { stdio: "inherit" });
});

test("a Vite build of a TypeScript app connects, publishes and gets the ack", async () => {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (error) => console.error(`[vite] ${error}`));
  await page.goto(`${base}/demo/`);
  await page.waitForFunction(() => document.getElementById("out").textContent.includes("bad room refused"), null, { timeout: 15000 });
  const lines = (await page.textContent("#out")).trim().split("\n");
  assert.deepEqual(lines, ["event seq=1 own=true", "published id=true seq=1", "bad room refused: true"]);
  assert.equal(await page.evaluate(() => document.body.dataset.badge), "live");
  await page.context().close();
});
