// The app that bundlers.test.mjs bundles with Vite, webpack 5 and esbuild after installing the
// packed tarball (`npm pack`): the main entry and the store entry, connected to the real server.
import { ChorusClient } from "@chorus/client";
import { roomStore } from "@chorus/client/store";

const out = document.getElementById("out");
const log = (line) => {
  out.textContent += `${line}\n`;
};

async function main() {
  const getToken = async () => {
    const response = await fetch("/v1/dev/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Bundle" }),
    });
    if (!response.ok) throw new Error(`no token (HTTP ${response.status})`);
    return (await response.json()).token;
  };
  // `chorusWasmUrl`: set by wasm-url.js (esbuild's file loader); otherwise the module's default.
  const client = await ChorusClient.connect({ url: location.origin, getToken, wasmUrl: globalThis.chorusWasmUrl });
  const room = client.join(`bundler:${document.body.dataset.bundler}`);
  const store = roomStore(room, { history: 0 });
  room.on("event", ({ seq, own, body }) => log(`event seq=${seq} own=${own} text=${body.text}`));
  const { seq } = await room.publish({ text: "bundled" });
  log(`published seq=${seq}`);
  const { feed } = store.getSnapshot();
  log(`feed ${feed.map((e) => `${e.body.text}:${e.status}`).join(",")}`);
  document.body.dataset.done = "yes";
}

main().catch((error) => log(`error ${error}`));
