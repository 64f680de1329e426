// The locks entry as an app bundles it (bundlers.test.mjs, Vite and webpack 5): its `connect`
// loads `chorus_locks_bg.wasm` through `new URL(…, import.meta.url)`, which the bundler follows.
import { connect, locks } from "@chorus/client/locks";

const out = document.getElementById("out");
const log = (line) => {
  out.textContent += `${line}\n`;
};

async function main() {
  const response = await fetch("/v1/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Locks" }),
  });
  const { token } = await response.json();
  const client = await connect({ url: location.origin, token });
  const room = client.join(`bundler-locks:${document.body.dataset.bundler}`);
  await new Promise((joined) => room.on("joined", joined));
  const doc = locks(room);
  const grant = await doc.acquire("title");
  log(`granted ${grant.name} held=${doc.holder("title")?.token === grant.token}`);
  const { seq } = await doc.publish({ text: "fenced" }, grant);
  log(`published seq=${seq}`);
  await doc.release(grant);
  log(`released held=${doc.held().length}`);
  document.body.dataset.done = "yes";
}

main().catch((error) => log(`error ${error}`));
