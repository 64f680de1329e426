// Starts and stops what the browser tests need: the real chorus-server, real nginx, and
// Debian's Chromium through playwright-core (never a downloaded browser).
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const root = resolve(import.meta.dirname, "../..");
const serverBin = process.env.CHORUS_SERVER_BIN ?? join(root, "target/debug/chorus-server");

export function freePort() {
  return new Promise((ok) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/**
 * Starts chorus-server in dev mode on `port`, with a SQLite file in `dir` or, given `redis` (a
 * `redis://` URL), on the Redis engine; resolves when it listens.
 */
export function startServer(port, dir, { demoDir = join(root, "www"), redis, apiKey } = {}) {
  const engine = redis ? ["--redis", redis] : ["--db", join(dir, "chorus.db")];
  const backend = apiKey ? ["--api-key", apiKey] : [];
  const child = spawn(serverBin, [
    "--dev", "--bind", `127.0.0.1:${port}`, ...engine, ...backend,
    "--demo-dir", demoDir, "--pkg-dir", join(root, "pkg"), "--app-dir", join(root, "app/dist"), "--poll-wait-ms", "5000",
  ], { env: { ...process.env, NO_COLOR: "1", RUST_LOG: "warn,chorus_server=info" }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((ok, fail) => {
    let seen = "";
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      if (seen.includes("listening")) ok(child);
    });
    child.on("exit", (code) => fail(new Error(`chorus-server exited (${code}): ${seen}`)));
  });
}

/** Starts Debian's redis-server on a free loopback port with its own directory (no persistence). */
export async function startRedis() {
  const dir = madeDir("chorus-redis-");
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((ok, fail) => {
    let seen = "";
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      if (seen.includes("Ready to accept connections")) ok();
    });
    child.on("exit", (code) => fail(new Error(`redis-server exited (${code}): ${seen}`)));
  });
  return { url: `redis://127.0.0.1:${port}/`, stop: () => stopServer(child) };
}

export async function stopServer(child, signal = "SIGTERM") {
  if (child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once("exit", ok));
  child.kill(signal);
  await exited;
}

/**
 * Starts nginx from tests/nginx/<conf> in front of `upstream` (a port, or a list of ports for a
 * conf with an upstream block); returns { port, stop }.
 */
export async function startNginx(conf, upstream) {
  const dir = madeDir("chorus-nginx-");
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub));
  const port = await freePort();
  const text = readFileSync(join(root, "tests/nginx", conf), "utf8").replaceAll("LISTEN", port).replaceAll("SERVERS", [upstream].flat().map((p) => `server 127.0.0.1:${p};`).join(" ")).replaceAll("UPSTREAM", upstream).replaceAll("WWW", join(root, "www")).replaceAll("PKG", join(root, "pkg"));
  writeFileSync(join(dir, "nginx.conf"), text);
  const nginx = process.platform === "linux" && (await exists("/usr/sbin/nginx")) ? "/usr/sbin/nginx" : "nginx";
  const child = spawn(nginx, ["-p", dir, "-c", join(dir, "nginx.conf")], { stdio: "inherit" });
  await waitForPort(port);
  return { port, stop: () => stopServer(child, "SIGQUIT") };
}

async function exists(path) {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

async function waitForPort(port) {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

/** Opens the demo as `name` in a fresh context; resolves once the badge shows `badge`. */
export async function openDemo(browser, base, { name, room, transport = "auto", badge = "live" }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[${name}] ${error}`));
  await page.goto(`${base}/demo/?autostart=1&name=${name}&room=${room}&transport=${transport}`);
  await waitForBadge(page, badge);
  return { context, page };
}

export async function waitForBadge(page, badge, timeout = 15000) {
  await page.waitForFunction((b) => document.getElementById("badge").dataset.badge === b, badge, { timeout });
}

/** The message lines of a page's log, with their status. */
export function messages(page) {
  return page.$$eval("#log li", (items) => items.map((li) => `${li.textContent} [${li.dataset.status}]`));
}

export function tempDir() {
  return madeDir("chorus-browser-");
}

/** The temporary directories this test file made (servers' databases, nginx's and redis's). */
const made = [];
// Removed when the test file's process exits (`node --test` runs each file in its own).
process.on("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function madeDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** The public dev secret a `--dev` server without `--jwt-secret` signs and checks tokens with. */
export const DEV_SECRET = "chorus-dev-secret-not-for-production";

/** A token as the dev server signs them: user `sub`, valid for `seconds`, with room grants. */
export function mint(sub, seconds, rooms = { "*": "publish" }) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const head = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + seconds, rooms })}`;
  return `${head}.${createHmac("sha256", DEV_SECRET).update(head).digest("base64url")}`;
}

/**
 * One server (`startServer` options) and one browser for a test file: started before its
 * tests, stopped after them. `ready` gets `{ browser, base, server }` once they run.
 */
export function serverAndBrowser(options, ready) {
  let server;
  let browser;
  before(async () => {
    const port = await freePort();
    server = await startServer(port, tempDir(), options);
    browser = await launchBrowser();
    ready({ browser, base: `http://127.0.0.1:${port}`, server });
  });
  after(async () => {
    await browser?.close();
    await stopServer(server);
  });
}
