// `@chorus/client/yjs`'s `ChorusProvider` against a scripted room in Node (no browser, no
// server): what the sync publishes, provoked exactly, which the browser tests can only race
// for — nothing for updates the outbox is already sending (a reloaded page's own `pending`
// publishes), the server's missing part when it lacks what the document has, and local edits
// gathered into one publish. The module is copied beside this project's `yjs` so that both
// sides use the one copy of it (the package leaves `yjs` to the app).
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import * as Y from "yjs";

const copy = join(import.meta.dirname, "node_modules", ".chorus-provider.mjs");
copyFileSync(join(import.meta.dirname, "../../pkg/src/yjs.js"), copy);
const { ChorusProvider } = await import(copy);

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const body = (update) => ({ type: "yjs", doc: "main", update: b64(update) });

/** A room whose server holds `server` (a Y.Doc) and which records what is published. */
function scriptedRoom(server) {
  const listeners = new Map();
  const on = (kind, listener) => {
    listeners.set(kind, [...(listeners.get(kind) ?? []), listener]);
    return () => listeners.set(kind, listeners.get(kind).filter((l) => l !== listener));
  };
  const published = [];
  const room = {
    name: "r",
    on,
    published,
    emit: (kind, payload) => (listeners.get(kind) ?? []).forEach((l) => l(payload)),
    publish: (value) => {
      published.push(value);
      return Promise.resolve({ id: `p${published.length}`, seq: published.length });
    },
    setCursor: () => {},
    cursors: () => [],
    client: {
      state: { state: "connecting" },
      on,
      _page: async (_room, query) => ({
        update: b64(Y.encodeStateAsUpdate(server, Buffer.from(query.sv, "base64"))),
        state_vector: b64(Y.encodeStateVector(server)),
        seq: 1,
      }),
    },
  };
  return room;
}

function edit(text) {
  const doc = new Y.Doc();
  const updates = [];
  doc.on("update", (u) => updates.push(u));
  doc.getText("body").insert(0, text);
  return { doc, update: updates[0] };
}

test("a reloaded page's own pending publishes are applied at once and not published again by the sync", async () => {
  const server = new Y.Doc();
  const room = scriptedRoom(server);
  const doc = new Y.Doc();
  const provider = new ChorusProvider(room, doc);
  const { update } = edit("offline edit");
  room.emit("pending", { room: "r", id: "x1", body: body(update) });
  assert.equal(doc.getText("body").toString(), "offline edit", "applied at once");
  room.emit("joined", { room: "r" });
  await provider.whenSynced();
  assert.deepEqual(room.published, [], "the outbox sends it; the sync does not");
  provider.destroy();
});

test("what the document has and the server lacks (not in the outbox) is published by the sync", async () => {
  const server = new Y.Doc();
  server.getText("body").insert(0, "stored ");
  const room = scriptedRoom(server);
  const doc = new Y.Doc();
  const { update } = edit("not on the server");
  Y.applyUpdate(doc, update, "elsewhere");
  const provider = new ChorusProvider(room, doc, { flushMs: 10000 });
  room.emit("joined", { room: "r" });
  await provider.whenSynced();
  assert.ok(doc.getText("body").toString().includes("stored "), "the server's part applied");
  assert.equal(room.published.length, 1, "the sync's diff (the edit came before the provider)");
  const check = new Y.Doc();
  Y.applyUpdate(check, Y.encodeStateAsUpdate(server));
  Y.applyUpdate(check, Buffer.from(room.published.at(-1).update, "base64"));
  assert.equal(check.getText("body").toString(), doc.getText("body").toString(), "the diff brings the server level");
  provider.destroy();
});

test("local edits within flushMs go out as one merged publish; the room's own updates are not echoed", async () => {
  const room = scriptedRoom(new Y.Doc());
  const doc = new Y.Doc();
  const provider = new ChorusProvider(room, doc, { flushMs: 30 });
  const text = doc.getText("body");
  text.insert(0, "a");
  text.insert(1, "b");
  text.insert(2, "c");
  const { update } = edit("from the room ");
  room.emit("event", { room: "r", seq: 1, body: body(update), own: false });
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(room.published.length, 1);
  const check = new Y.Doc();
  Y.applyUpdate(check, Buffer.from(room.published[0].update, "base64"));
  assert.equal(check.getText("body").toString(), "abc", "only the local edits, merged");
  provider.destroy();
});
