// `@chorus/client/yjs`: a Yjs provider on a Chorus room (docs/PROTOCOL.md, "Documents").
// A document's updates travel as the room's durable events (`{type: "yjs", doc, update}`), so
// they get the outbox (offline edits survive a reload), ordering, polling and history; the
// server checks and compacts them and answers what a client lacks (`GET .../docs/{doc}?sv=`).
// Awareness (y-protocols: who is here, cursors, selections) travels as the room's live
// cursors, one per connection, so awareness-based editor bindings work unchanged.
// `yjs` and `y-protocols` are peer dependencies: the core entry carries none of this.
import * as Y from "yjs";
import { Awareness } from "y-protocols/awareness";

const TYPE = "yjs";
// Remote awareness states are refreshed this often, so y-protocols' 30 s timeout never drops
// the state of a member whose cursor simply did not move (live cursors are not resent).
const KEEP_ALIVE_MS = 10000;

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Whether state vector `mine` has a clock beyond `theirs` (both `Map<client, clock>`). */
function ahead(mine, theirs) {
  for (const [client, clock] of mine) if (clock > (theirs.get(client) ?? 0)) return true;
  return false;
}

export class ChorusProvider {
  #room;
  #offs = [];
  #queue = [];
  #timer;
  #synced = false;
  #waiters = [];
  #listeners = new Map();
  #keepAlive;
  #syncing;
  // The highest clock per Yjs client among this tab's own publishes (`pending`): the outbox
  // sends those, so a sync need not publish them again.
  #queued = new Map();
  #ownAwareness;

  /**
   * Binds `doc` (a `Y.Doc`) to the document `name` (default `"main"`) of a joined `room`.
   * Options: `name`, `awareness` (a y-protocols `Awareness`; one is made by default),
   * `flushMs` (local updates within this many milliseconds go as one event; default 50).
   */
  constructor(room, doc, { name = "main", awareness, flushMs = 50 } = {}) {
    // An awareness made here is destroyed with the provider (its timer would run on).
    this.#ownAwareness = !awareness;
    awareness ??= new Awareness(doc);
    this.#room = room;
    this.doc = doc;
    this.name = name;
    this.awareness = awareness;
    this.flushMs = flushMs;
    const on = (target, kind, listener) => this.#offs.push(target.on(kind, listener));
    // Stored events and this tab's own publishes (`pending`: at once, and after a reload the
    // outbox's, which carry this tab's offline edits) are applied alike: applying twice is harmless.
    const take = ({ body }, own) => {
      if (body?.type !== TYPE || body.doc !== name || typeof body.update !== "string") return;
      const update = fromBase64(body.update);
      Y.applyUpdate(doc, update, this);
      if (own) for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update))) this.#queued.set(client, Math.max(clock, this.#queued.get(client) ?? 0));
    };
    on(room, "event", (event) => take(event, false));
    on(room, "pending", (pending) => take(pending, true));
    on(room, "joined", () => this.#sync());
    on(room, "reset", () => this.#sync());
    on(room, "cursors", ({ cursors }) => this.#remoteAwareness(cursors));
    const onUpdate = (update, origin) => origin !== this && this.#local(update);
    doc.on("update", onUpdate);
    this.#offs.push(() => doc.off("update", onUpdate));
    const onAwareness = ({ added, updated, removed }, origin) => {
      if (origin !== "remote" && [...added, ...updated, ...removed].includes(doc.clientID)) this.#publishAwareness();
    };
    awareness.on("update", onAwareness);
    this.#offs.push(() => awareness.off("update", onAwareness));
    this.#keepAlive = setInterval(() => {
      const now = Date.now();
      for (const [client, meta] of awareness.meta) if (client !== doc.clientID && awareness.states.has(client)) meta.lastUpdated = now;
    }, KEEP_ALIVE_MS);
    this.#remoteAwareness(room.cursors());
    this.#publishAwareness();
    if (room.client.state.state === "connected") this.#sync();
  }

  /** Whether the document has been read from the server since the provider started. */
  get synced() {
    return this.#synced;
  }

  /** Resolves once the document has been read from the server (`synced`). */
  whenSynced() {
    return this.#synced ? Promise.resolve() : new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** `synced` (`true`) once the document was read; `error` (a `ChorusError`) when a sync or publish fails. */
  on(kind, listener) {
    if (!this.#listeners.has(kind)) this.#listeners.set(kind, new Set());
    this.#listeners.get(kind).add(listener);
    return () => this.#listeners.get(kind)?.delete(listener);
  }

  #emit(kind, payload) {
    for (const listener of this.#listeners.get(kind) ?? []) listener(payload);
  }

  // Reads what this document lacks from the server, then publishes what the server lacks.
  // One at a time: a `joined` during a sync asks for one more afterwards.
  async #sync() {
    if (this.#syncing) return void (this.#syncing.again = true);
    const run = (this.#syncing = { again: false });
    try {
      const sv = toBase64(Y.encodeStateVector(this.doc));
      const state = await this.#room.client._page(this.#room.name, { sv }, `docs/${encodeURIComponent(this.name)}`);
      Y.applyUpdate(this.doc, fromBase64(state.update), this);
      const theirs = fromBase64(state.state_vector);
      // What the server lacks beyond what the outbox is sending anyway.
      const known = Y.decodeStateVector(theirs);
      for (const [client, clock] of this.#queued) known.set(client, Math.max(clock, known.get(client) ?? 0));
      if (ahead(Y.decodeStateVector(Y.encodeStateVector(this.doc)), known)) {
        this.#publish(Y.encodeStateAsUpdate(this.doc, theirs));
      }
      if (!this.#synced) {
        this.#synced = true;
        this.#waiters.splice(0).forEach((wake) => wake());
        this.#emit("synced", true);
      }
    } catch (error) {
      // Offline or refused: the next `joined` tries again.
      this.#emit("error", error);
    } finally {
      this.#syncing = undefined;
      if (run.again) this.#sync();
    }
  }

  #local(update) {
    this.#queue.push(update);
    this.#timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  /** Publishes the local updates waiting for `flushMs` now (as one event). */
  flush() {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#queue.length) this.#publish(Y.mergeUpdates(this.#queue.splice(0)));
  }

  #publish(update) {
    try {
      this.#room.publish({ type: TYPE, doc: this.name, update: toBase64(update) }).catch((error) => this.#emit("error", error));
    } catch (error) {
      this.#emit("error", error);
    }
  }

  // This tab's awareness state as its live cursor: `{ y: clientID, s: state }` (null: none).
  #publishAwareness() {
    const state = this.awareness.getLocalState();
    try {
      this.#room.setCursor(state === null ? null : { y: this.doc.clientID, s: state });
    } catch (error) {
      this.#emit("error", error);
    }
  }

  // The others' live cursors as awareness states (by their Yjs client id).
  #remoteAwareness(cursors) {
    const awareness = this.awareness;
    const now = Date.now();
    const seen = new Map();
    for (const { value } of cursors) if (typeof value?.y === "number" && value.y !== this.doc.clientID) seen.set(value.y, value.s);
    const added = [];
    const updated = [];
    const removed = [];
    for (const [client, state] of seen) {
      const before = awareness.states.get(client);
      if (before === undefined) added.push(client);
      else if (JSON.stringify(before) !== JSON.stringify(state)) updated.push(client);
      else continue;
      const meta = awareness.meta.get(client);
      awareness.meta.set(client, { clock: (meta?.clock ?? 0) + 1, lastUpdated: now });
      awareness.states.set(client, state);
    }
    for (const client of awareness.states.keys()) {
      if (client !== this.doc.clientID && !seen.has(client)) {
        awareness.states.delete(client);
        removed.push(client);
      }
    }
    if (added.length || updated.length || removed.length) {
      awareness.emit("change", [{ added, updated, removed }, "remote"]);
      awareness.emit("update", [{ added, updated, removed }, "remote"]);
    }
  }

  /**
   * Stops: publishes what waits, clears this tab's awareness (and destroys the awareness it
   * made itself) and follows the room no more.
   */
  destroy() {
    this.flush();
    clearInterval(this.#keepAlive);
    this.#offs.splice(0).forEach((off) => off());
    if (this.#ownAwareness) this.awareness.destroy();
    try {
      this.#room.setCursor(null);
    } catch {}
  }
}
