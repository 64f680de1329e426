// `@chorus/client/store` in a real browser against the real server: the snapshot holds the feed
// (history, pending, stored, failed), presence, typing and the connection state; it is frozen,
// the same object until something changes, and `subscribe` follows the store contract that
// React's useSyncExternalStore and Svelte expect (called at once, then on every change).
import assert from "node:assert/strict";
import { test } from "node:test";
import { mint, serverAndBrowser } from "./harness.mjs";

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

test("a room store's snapshots: history, pending then stored, presence, typing, connection; frozen and stable", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.exposeFunction("mint", mint);
  await page.goto(`${base}/demo/`);
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const { roomStore } = await import("/pkg/store.js");
    const until = (store, check) =>
      new Promise((resolve) => {
        const stop = store.subscribe((s) => {
          if (check(s)) {
            queueMicrotask(() => stop());
            resolve(s);
          }
        });
      });
    const ben = await ChorusClient.connect({ url: location.origin, token: await window.mint("ben", 3600) });
    const benRoom = ben.join("t:store", { meta: { role: "b" } });
    await benRoom.publish({ n: 1 });
    await benRoom.publish({ n: 2 });

    const ana = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600) });
    const room = ana.join("t:store");
    const store = roomStore(room, { history: 10 });
    const calls = [];
    const stop = store.subscribe((s) => calls.push(s));
    const first = { atOnce: calls.length === 1 && calls[0] === store.getSnapshot(), same: store.getSnapshot() === store.getSnapshot() };

    const loaded = await until(store, (s) => s.feed.length === 2);
    const live = await until(store, (s) => s.connection.badge === "live" && s.presence.length === 2);
    const published = room.publish({ n: 3 });
    const pending = store.getSnapshot().feed.at(-1);
    await published;
    const stored = await until(store, (s) => s.feed.length === 3 && s.feed[2].status === "stored");
    benRoom.typing(true);
    const typing = await until(store, (s) => s.typing.length === 1);
    const unchanged = store.getSnapshot() === typing;
    const frozen = [Object.isFrozen(typing), Object.isFrozen(typing.feed), Object.isFrozen(typing.feed[0]), Object.isFrozen(typing.presence), Object.isFrozen(typing.typing), Object.isFrozen(typing.connection)];
    // The feed array is shared between snapshots while only typing changes.
    const feedShared = typing.feed === stored.feed;
    stop();
    const callsBefore = calls.length;
    await benRoom.publish({ n: 4 });
    await until(store, (s) => s.feed.length === 4);
    const afterStop = calls.length === callsBefore;
    store.close();
    const closedAt = store.getSnapshot();
    await benRoom.publish({ n: 5 });
    await new Promise((r) => setTimeout(r, 300));
    const afterClose = store.getSnapshot() === closedAt;
    ana.close();
    ben.close();
    return {
      first,
      loaded: loaded.feed.map((e) => [e.seq, e.body.n, e.status, e.from, e.own]),
      presence: live.presence.map((u) => u.user).sort(),
      pending: [pending.status, pending.own, pending.body.n, pending.seq],
      stored: stored.feed.map((e) => [e.seq, e.body.n, e.status, e.own]),
      typing: typing.typing,
      unchanged,
      frozen,
      feedShared,
      afterStop,
      afterClose,
      calls: calls.length,
    };
  });
  assert.deepEqual(result.first, { atOnce: true, same: true });
  assert.deepEqual(result.loaded, [[1, 1, "stored", "ben", false], [2, 2, "stored", "ben", false]]);
  assert.deepEqual(result.presence, ["ana", "ben"]);
  assert.deepEqual(result.pending, ["pending", true, 3, undefined]);
  assert.deepEqual(result.stored, [[1, 1, "stored", false], [2, 2, "stored", false], [3, 3, "stored", true]]);
  assert.deepEqual(result.typing, ["ben"]);
  assert.equal(result.unchanged, true, "no change, same snapshot");
  assert.deepEqual(result.frozen, [true, true, true, true, true, true]);
  assert.equal(result.feedShared, true, "a typing update keeps the feed array");
  assert.equal(result.afterStop, true, "an unsubscribed listener is not called");
  assert.equal(result.afterClose, true, "a closed store does not change");
  await context.close();
});

test("a refused publish stays in the feed as failed, with the server's code", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.exposeFunction("mint", mint);
  await page.goto(`${base}/demo/`);
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const { roomStore } = await import("/pkg/store.js");
    const client = await ChorusClient.connect({ url: location.origin, token: await window.mint("eve", 3600, { "t:readonly": "read" }) });
    const store = roomStore(client.join("t:readonly"), { history: 0 });
    const refused = await client.join("t:readonly").publish({ n: 1 }).then(() => "stored", (e) => e.code);
    const entry = store.getSnapshot().feed[0];
    client.close();
    return { refused, entry: [store.getSnapshot().feed.length, entry.status, entry.code, entry.body.n] };
  });
  assert.equal(result.refused, "forbidden");
  assert.deepEqual(result.entry, [1, "failed", "forbidden", 1]);
  await context.close();
});
