// `@chorus/client/store` against a scripted room in Node (no browser, no server): the parts of
// its contract the browser tests cannot easily provoke — a `reset` dropping the stored entries
// and loading history again, history merged with live events without duplicates, an expired
// publish — and Svelte's store functions (`get`, `derived`) using it as it is.
import assert from "node:assert/strict";
import { test } from "node:test";
import { derived, get } from "svelte/store";
import { roomStore } from "../../pkg/src/store.js";

/** A room and client that emit what the test says and answer history from `pages`. */
function scriptedRoom(pages) {
  const listeners = new Map();
  const on = (kind, listener) => {
    listeners.set(kind, [...(listeners.get(kind) ?? []), listener]);
    return () => listeners.set(kind, listeners.get(kind).filter((l) => l !== listener));
  };
  const client = { state: { state: "connecting", badge: "syncing" }, on };
  const room = {
    name: "r",
    client,
    on,
    presence: () => [],
    history: async () => pages.shift() ?? { events: [] },
  };
  const emit = (kind, payload) => (listeners.get(kind) ?? []).forEach((l) => l(payload));
  return { room, emit, count: (kind) => (listeners.get(kind) ?? []).length };
}

const stored = (seq, id = `e${seq}`) => ({ room: "r", seq, id, from: "ben", at: 0, body: { n: seq } });
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
const feed = (store) => store.getSnapshot().feed.map((e) => `${e.seq ?? "-"}:${e.id}:${e.status}`);

test("history and live events merge in seq order without duplicates; pending stays last", async () => {
  const { room, emit } = scriptedRoom([{ events: [stored(1), stored(2), stored(3)] }]);
  const store = roomStore(room, { history: 3 });
  // A live event arrives before the history page: it is kept, and not doubled by the page.
  emit("event", { ...stored(3), own: false });
  emit("pending", { room: "r", id: "mine", body: { n: 9 } });
  await tick();
  assert.deepEqual(feed(store), ["1:e1:stored", "2:e2:stored", "3:e3:stored", "-:mine:pending"]);
  emit("event", { ...stored(4, "mine"), from: "me", own: true });
  assert.deepEqual(feed(store), ["1:e1:stored", "2:e2:stored", "3:e3:stored", "4:mine:stored"]);
  // Ephemeral events are not part of the feed.
  const before = store.getSnapshot();
  emit("event", { room: "r", id: "cursor", from: "ben", at: 0, body: {}, own: false });
  assert.equal(store.getSnapshot(), before);
});

test("a reset drops the stored entries, keeps unsent publishes and loads the newest again", async () => {
  const { room, emit } = scriptedRoom([{ events: [stored(1), stored(2)] }, { events: [stored(7)] }]);
  const store = roomStore(room, { history: 2 });
  await tick();
  emit("pending", { room: "r", id: "mine", body: {} });
  emit("reset", { room: "r", reason: "epoch_changed" });
  assert.deepEqual(feed(store), ["-:mine:pending"]);
  await tick();
  assert.deepEqual(feed(store), ["7:e7:stored", "-:mine:pending"]);
});

test("a reset while the first history load is on its way loads the newest again", async () => {
  const { room, emit } = scriptedRoom([{ events: [stored(1), stored(2)] }, { events: [stored(7)] }]);
  const store = roomStore(room, { history: 2 });
  emit("reset", { room: "r", reason: "epoch_changed" });
  await tick();
  await tick();
  assert.deepEqual(feed(store), ["7:e7:stored"]);
});

test("a history load that fails is tried again on the next joined, once", async () => {
  let asked = 0;
  const { room, emit } = scriptedRoom([]);
  room.history = async () => {
    asked += 1;
    if (asked === 1) throw new Error("offline");
    return { events: [stored(1)] };
  };
  const store = roomStore(room);
  await tick();
  assert.deepEqual(feed(store), []);
  emit("joined", { room: "r", cursor: { epoch: 1, seq: 1 } });
  await tick();
  emit("joined", { room: "r", cursor: { epoch: 1, seq: 1 } });
  await tick();
  assert.deepEqual(feed(store), ["1:e1:stored"]);
  assert.equal(asked, 2);
});

test("expired and refused publishes become failed entries with their code", async () => {
  const { room, emit } = scriptedRoom([]);
  const store = roomStore(room, { history: 0 });
  emit("pending", { room: "r", id: "a", body: {} });
  emit("pending", { room: "r", id: "b", body: {} });
  emit("expired", { room: "r", id: "a" });
  emit("publishFailed", { room: "r", id: "b", code: "forbidden", message: "no" });
  assert.deepEqual(
    store.getSnapshot().feed.map((e) => [e.id, e.status, e.code]),
    [["a", "failed", "expired"], ["b", "failed", "forbidden"]],
  );
});

test("Svelte's get and derived use the store as it is; close() removes every listener", () => {
  const { room, emit, count } = scriptedRoom([]);
  const store = roomStore(room, { history: 0 });
  const typingCount = derived(store, ($room) => $room.typing.length);
  const seen = [];
  const stop = typingCount.subscribe((n) => seen.push(n));
  emit("typing", { room: "r", users: ["ben"] });
  emit("presence", { room: "r", users: [{ user: "ben", conns: [] }] });
  emit("typing", { room: "r", users: [] });
  stop();
  assert.deepEqual(seen, [0, 1, 0], "derived recomputes only when the value changes");
  assert.deepEqual(get(store).presence.map((u) => u.user), ["ben"]);
  assert.equal(get(store), store.getSnapshot());
  room.client.state = { state: "closed", badge: "offline" };
  emit("state", room.client.state);
  assert.equal(get(store).connection.state, "closed");
  store.close();
  for (const kind of ["state", "joined", "pending", "event", "presence", "typing", "reset", "expired", "publishFailed"]) {
    assert.equal(count(kind), 0, kind);
  }
});
