// The package as users get it: `npm pack` in pkg/, the tarball installed into a fresh project,
// bundled by Vite, webpack 5 and esbuild (each the way pkg/README.md says, wasm included), and
// each build loaded in Chromium against the real server: it connects, publishes and receives.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { build as esbuild } from "esbuild";
import { build as vite } from "vite";
import webpack from "webpack";
import { freePort, launchBrowser, root, startServer, stopServer, tempDir } from "./harness.mjs";

const dir = tempDir();
const project = join(dir, "project");
const dist = join(dir, "dist");
const page = (bundler, script) =>
  `<!doctype html>\n<html><head><meta charset="utf-8"><title>${bundler}</title></head>\n<body data-bundler="${bundler}"><pre id="out"></pre>${script}</body></html>\n`;
let browser;
let server;
let base;

before(async () => {
  // Pack the package and install the tarball, as from a registry (no link to pkg/).
  mkdirSync(project);
  const [{ filename }] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: join(root, "pkg"), encoding: "utf8" }));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "bundled", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--offline", join(dir, filename)], { cwd: project, stdio: "inherit" });
  for (const file of ["main.js", "wasm-url.js", "locks-main.js"]) copyFileSync(join(import.meta.dirname, "bundler-app", file), join(project, file));

  // Vite: follows `new URL("chorus_bg.wasm", import.meta.url)` and emits the wasm as an asset.
  writeFileSync(join(project, "index.html"), page("vite", '<script type="module" src="./main.js"></script>'));
  await vite({ root: project, base: "/demo/vite/", logLevel: "warn", build: { outDir: join(dist, "vite"), emptyOutDir: true } });

  // webpack 5: the same, with its built-in asset modules (no loader, no configuration).
  await new Promise((resolve, reject) =>
    webpack({ mode: "production", context: project, entry: "./main.js", output: { path: join(dist, "webpack"), filename: "main.js" } }, (error, stats) =>
      error || stats.hasErrors() ? reject(error ?? new Error(stats.toString("errors-only"))) : resolve(),
    ),
  );
  writeFileSync(join(dist, "webpack/index.html"), page("webpack", '<script src="main.js"></script>'));

  // esbuild: leaves the URL alone, so the wasm is copied next to the bundle.
  await esbuild({ entryPoints: [join(project, "main.js")], bundle: true, format: "esm", minify: true, outdir: join(dist, "esbuild"), logLevel: "warning" });
  copyFileSync(join(project, "node_modules/@chorus/client/chorus_bg.wasm"), join(dist, "esbuild/chorus_bg.wasm"));
  writeFileSync(join(dist, "esbuild/index.html"), page("esbuild", '<script type="module" src="main.js"></script>'));
  // esbuild, the other way: the wasm imported with the file loader, its URL passed as `wasmUrl`.
  await esbuild({ entryPoints: [join(project, "wasm-url.js")], bundle: true, format: "esm", minify: true, loader: { ".wasm": "file" }, outdir: join(dist, "esbuild-file-loader"), logLevel: "warning" });
  writeFileSync(join(dist, "esbuild-file-loader/index.html"), page("esbuild-file-loader", '<script type="module" src="wasm-url.js"></script>'));

  // The locks entry, as Vite and webpack bundle it: its module comes from its own `new URL`.
  const locksProject = join(dir, "locks-project");
  mkdirSync(locksProject);
  writeFileSync(join(locksProject, "index.html"), page("vite-locks", '<script type="module" src="../project/locks-main.js"></script>'));
  await vite({ root: locksProject, base: "/demo/vite-locks/", logLevel: "warn", build: { outDir: join(dist, "vite-locks"), emptyOutDir: true } });
  await new Promise((resolve, reject) =>
    webpack({ mode: "production", context: project, entry: "./locks-main.js", output: { path: join(dist, "webpack-locks"), filename: "main.js" } }, (error, stats) =>
      error || stats.hasErrors() ? reject(error ?? new Error(stats.toString("errors-only"))) : resolve(),
    ),
  );
  writeFileSync(join(dist, "webpack-locks/index.html"), page("webpack-locks", '<script src="main.js"></script>'));

  const port = await freePort();
  server = await startServer(port, dir, { demoDir: dist });
  base = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stopServer(server);
});

for (const bundler of ["vite", "webpack", "esbuild", "esbuild-file-loader"]) {
  test(`the packed tarball bundled by ${bundler} connects, publishes and receives in Chromium`, async () => {
    const tab = await (await browser.newContext()).newPage();
    tab.on("pageerror", (error) => console.error(`[${bundler}] ${error}`));
    await tab.goto(`${base}/demo/${bundler}/`);
    await tab.waitForFunction(() => document.body.dataset.done === "yes" || document.getElementById("out").textContent.includes("error"), null, { timeout: 15000 });
    const lines = (await tab.textContent("#out")).trim().split("\n");
    assert.deepEqual(lines, ["event seq=1 own=true text=bundled", "published seq=1", "feed bundled:stored"]);
    await tab.context().close();
  });
}

for (const bundler of ["vite-locks", "webpack-locks"]) {
  test(`the locks entry bundled by ${bundler.replace("-locks", "")} loads its own module, acquires, publishes fenced and releases`, async () => {
    const tab = await (await browser.newContext()).newPage();
    tab.on("pageerror", (error) => console.error(`[${bundler}] ${error}`));
    await tab.goto(`${base}/demo/${bundler}/`);
    await tab.waitForFunction(() => document.body.dataset.done === "yes" || document.getElementById("out").textContent.includes("error"), null, { timeout: 15000 });
    const lines = (await tab.textContent("#out")).trim().split("\n");
    assert.deepEqual(lines, ["granted title held=true", "published seq=1", "released held=0"]);
    await tab.context().close();
  });
}
