// The JS-shaped API of the Chorus client. The client core (connection, fallback, outbox,
// merge, presence, typing) runs in WebAssembly; this file only adapts it to idiomatic JS:
// event emitters (client-wide and per room), Room objects, promises for acknowledgements,
// token renewal through `getToken`, and history pages. What only JS needs is done here, not in
// the core: the wasm has a size budget (docs/SIZE.md).
import init, { WasmClient } from "../wasm/chorus.js";

// The operations of `WasmClient.call`; `op` in sdk/src/js_abi.rs has the same numbers (a test checks).
const JOIN = 0;
const LEAVE = 1;
const PUBLISH = 2;
const EPHEMERAL = 3;
const TYPING = 4;
const SET_PRESENCE = 5;
const PRESENCE = 6;
const TOKEN = 7;
const CLOSE = 8;
const SET_CURSOR = 9;
const STREAM = 10;
const TRANSPORTS = ["auto", "websocket", "polling"];

// JSON text for the core. What JSON cannot carry is refused here with `invalid_json`, never a
// bare TypeError: a cycle, a BigInt or a throwing `toJSON` makes `JSON.stringify` throw, and
// `undefined` or a function makes it return `undefined`.
function json(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new ChorusError("invalid_json", `the value cannot become JSON: ${error.message}`);
  }
  if (text === undefined) throw new ChorusError("invalid_json", `a ${typeof value} cannot become JSON`);
  return text;
}

// The token from `getToken`, or "" when it throws, rejects or gives no string: the core takes
// "" as a passing failure and asks again after its next backoff step.
async function ask(getToken) {
  try {
    const token = await getToken();
    return typeof token === "string" ? token : "";
  } catch {
    return "";
  }
}

// A JWT's claims, or {} when the token is no JWT.
function claims(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) ?? {};
  } catch {
    return {};
  }
}

// A JWT's `exp` in milliseconds since the epoch, or undefined when it has none (or is no JWT).
function expiry(token) {
  const exp = claims(token).exp;
  return typeof exp === "number" ? exp * 1000 : undefined;
}

// Storage for several tabs and users (ARCHITECTURE.md, "Client storage"). Every client keeps its
// outbox and transport under `<storagePrefix><url>|<user>|<tab>:` (a fresh tab id per client),
// and a lease there that it renews every 5 s and removes when its page goes away or it closes.
// A client that starts adopts the outboxes of its user's clients on that server whose lease is
// gone or 15 s old, so no tab overwrites another's and a closed or crashed tab's publishes are sent.
const OUTBOX = ":chorus.outbox";
const LEASE = ":lease";
const TRANSPORT = ":chorus.transport";
const STALE_MS = 15 * 1000;

function stored(key, value) {
  try {
    if (value === undefined) return localStorage.getItem(key) ?? undefined;
    value === null ? localStorage.removeItem(key) : localStorage.setItem(key, value);
  } catch {
    // Storage full or forbidden: the outbox still works for this page's lifetime.
  }
}

// The keys in localStorage ([] where storage is forbidden).
function storedKeys() {
  try {
    return Object.keys(localStorage);
  } catch {
    return [];
  }
}

function adopt(prefix, tab) {
  // Every other tab with a key here (outbox, transport or lease) and no fresh lease: its outbox.
  const found = new Map();
  for (const key of storedKeys()) {
    const other = key.startsWith(prefix) && key.slice(prefix.length, key.lastIndexOf(":"));
    if (!other || other === tab || found.has(other) || Date.now() - (stored(prefix + other + LEASE) ?? 0) < STALE_MS) continue;
    found.set(other, stored(prefix + other + OUTBOX));
  }
  // One outbox moves as it is (the reload of a single tab); several are merged in publish order.
  const outboxes = [...found.values()].filter(Boolean);
  let merged = outboxes[0];
  if (outboxes.length > 1) {
    const entries = [];
    for (const text of outboxes) {
      try {
        entries.push(...JSON.parse(text).entries);
      } catch {}
    }
    merged = JSON.stringify({ entries: entries.sort((a, b) => a.created_ms - b.created_ms) });
  }
  if (merged) stored(prefix + tab + OUTBOX, merged);
  for (const other of found.keys()) {
    // The remembered transport (a fallback to polling) carries over too.
    const transport = stored(prefix + other + TRANSPORT);
    if (transport) stored(prefix + tab + TRANSPORT, transport);
    // Removed only once under this tab's key (a crash in between sends twice, never loses).
    for (const part of [OUTBOX, TRANSPORT, LEASE]) stored(prefix + other + part, null);
  }
}

// Listener sets by kind; an exception in one listener does not stop the others (it is
// rethrown from a microtask, where the console shows it).
class Emitter {
  #listeners = new Map();

  on(kind, listener) {
    if (!this.#listeners.has(kind)) this.#listeners.set(kind, new Set());
    this.#listeners.get(kind).add(listener);
    return () => this.#listeners.get(kind)?.delete(listener);
  }

  _emit(kind, payload) {
    for (const listener of this.#listeners.get(kind) ?? []) {
      try {
        listener(payload);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

let ready;

/** Loads the WebAssembly module (once). Called by `ChorusClient.connect`. */
export function load(wasmUrl) {
  ready ??= init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
  return ready;
}

export class ChorusError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "ChorusError";
    this.code = code;
  }
}

export class ChorusClient extends Emitter {
  #core;
  #waiting = new Map();
  #rooms = new Map();
  #state = { state: "connecting", badge: "syncing" };
  #outbox = 0;
  #url;
  #token = "";
  #getToken;
  #renewal;
  #closed = false;
  #user;
  #prefix;
  #base;
  #learned;
  #lease;
  // Events raised while the app is still setting up (subscribing, joining) wait for the next
  // task, so e.g. publishes restored after a reload reach listeners registered after join().
  #held = [];

  /**
   * Connects (after loading the WebAssembly module). Options: `url` (the server, e.g.
   * `location.origin`), `token` and/or `getToken` (async; asked when there is no token, when
   * the server refuses it, and before it expires), `transport` (`auto` | `websocket` |
   * `polling`), `storagePrefix`, `wasmUrl`, `shareConnection` (default true: the tabs of
   * this origin share one WebSocket to the server; false: this client opens its own).
   */
  static async connect(options) {
    if (options?.token === undefined && typeof options?.getToken !== "function") {
      throw new TypeError("options.token or options.getToken is required");
    }
    await load(options.wasmUrl);
    const token = options.token ?? (await ask(options.getToken));
    return new ChorusClient(options, token);
  }

  constructor(options, token) {
    super();
    if (!options?.url) throw new TypeError("options.url is required");
    const transport = TRANSPORTS.indexOf(options.transport ?? "auto");
    if (transport < 0) throw new TypeError(`options.transport must be auto, websocket or polling, not ${JSON.stringify(options.transport)}`);
    this.#url = options.url.replace(/\/+$/, "");
    this.#getToken = options.getToken;
    // Nothing may throw into the core (listeners' exceptions are rethrown apart by `_emit`).
    const onEvent = (kind, text) => {
      try {
        const payload = JSON.parse(text);
        this.#held ? this.#held.push([kind, payload]) : this.#dispatch(kind, payload);
      } catch {}
    };
    // The browser I/O reports to the core through a plain function (see `start` in js.rs).
    const report = (kind, id, number, text) => this.#core.report(kind, id, number, text);
    // Without a token yet (an offline start with `getToken`) the user is the last one seen here.
    // Encoded, so that no user's (or server's) keys start with another one's prefix.
    const base = `${options.storagePrefix ?? "chorus:"}${encodeURIComponent(this.#url)}|`;
    this.#user = String(claims(token ?? "").sub ?? (token ? "" : stored(base + "user") ?? ""));
    this.#base = base;
    if (this.#user) stored(base + "user", this.#user);
    const prefix = (this.#prefix = `${base}${encodeURIComponent(this.#user)}|`);
    const lease = prefix + Math.random().toString(36).slice(2) + LEASE;
    const renew = () => stored(lease, this.#closed ? null : String(Date.now()));
    renew();
    adopt(prefix, lease.slice(prefix.length, -LEASE.length));
    this.#lease = [setInterval(renew, 5000), () => stored(lease, null)];
    addEventListener("pagehide", this.#lease[1]);
    this.#core = WasmClient.start(options.url, token ?? "", transport, lease.slice(0, -LEASE.length + 1), onEvent, report, options.shareConnection !== false);
    if (!this.#core) throw new ChorusError("no_randomness", "crypto.getRandomValues is not available");
    this.#remember(token ?? "");
    setTimeout(() => {
      const held = this.#held;
      this.#held = null;
      for (const [kind, payload] of held) this.#dispatch(kind, payload);
    }, 0);
  }

  /** The connection state (`state`, `badge`: `live` | `syncing` | `offline`, ...). */
  get state() {
    return this.#state;
  }

  /** Publishes waiting for the server's ack (sent when back online). */
  get queued() {
    return this.#outbox;
  }

  /** Joins a room (or updates this tab's presence meta in it); returns its `Room`. */
  join(name, { meta = null } = {}) {
    this._call(JOIN, name, json(meta));
    let room = this.#rooms.get(name);
    if (!room) {
      room = new Room(this, name);
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** Hands over a fresh token: a connected WebSocket renews it in place (no reconnect). */
  setToken(token) {
    if (typeof token !== "string" || !token) throw new TypeError("setToken needs a non-empty token string");
    if (!this.#sameUser(token)) throw new TypeError("setToken needs a token for the same user: for another user, signOut() or close() and connect again");
    this._call(TOKEN, "", token);
    this.#remember(token);
  }

  /** Closes the client; publishes still waiting for their ack reject with `closed`. */
  close() {
    this.#closed = true;
    clearTimeout(this.#renewal);
    clearInterval(this.#lease[0]);
    removeEventListener("pagehide", this.#lease[1]);
    this.#lease[1]();
    this._call(CLOSE, "", "");
    const error = new ChorusError("closed", "the client was closed before the publish was acknowledged");
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }

  /**
   * Closes the client and clears what this browser keeps for its user on its server: the
   * outboxes of all the user's tabs (publishes still waiting are dropped, never sent) and their
   * remembered transports. Cursors live only in memory and go with the client.
   */
  signOut() {
    this.close();
    for (const key of storedKeys()) if (key.startsWith(this.#prefix) || key === this.#base + "user") stored(key, null);
  }

  // Whether `token` is for this client's user (its outbox must never be sent as anyone else). A
  // client that started knowing no user (no token, and no user started here before) takes the
  // first token's user.
  #sameUser(token) {
    const sub = String(claims(token).sub ?? "");
    if (!this.#user && this.#learned === undefined && sub) stored(this.#base + "user", (this.#learned = sub));
    return sub === (this.#user || this.#learned || "");
  }

  /** Runs one operation of the core; throws a `ChorusError` when it is refused. */
  _call(op, room, arg) {
    const answer = JSON.parse(this.#core.call(op, room, arg));
    if (answer.code) throw new ChorusError(answer.code, answer.message);
    return answer.ok;
  }

  _publish(room, body) {
    let id;
    try {
      id = this._call(PUBLISH, room, json(body));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => this.#waiting.set(id, { resolve, reject }));
  }

  _leave(name) {
    this.#rooms.delete(name);
    this._call(LEAVE, name, "");
  }

  /**
   * `GET /v1/rooms/{room}/{path}?…` with the current token (renewed once if refused): history
   * pages (`path` `events`; `query`: after, before, limit, type, user) and, for other entries,
   * the room's other resources (`docs/{doc}`).
   */
  async _page(room, query, path = "events") {
    for (let renewed = false; ; renewed = true) {
      const response = await fetch(`${this.#url}/v1/rooms/${encodeURIComponent(room)}/${path}?${new URLSearchParams(Object.entries(query).filter((entry) => entry[1] !== undefined))}`, {
        headers: { authorization: `Bearer ${this.#token}` },
      }).catch((error) => {
        throw new ChorusError("offline", `the request got no answer: ${error.message}`);
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) return body;
      if (response.status === 401 && !renewed && this.#getToken) {
        const token = await ask(this.#getToken);
        // A token for another user counts as none: the request fails with its 401.
        if (token && !this.#closed && this.#sameUser(token)) {
          this.setToken(token);
          continue;
        }
      }
      throw new ChorusError(body.code ?? "internal", body.message ?? `the request failed with HTTP ${response.status}`);
    }
  }

  // Keeps the token for REST requests and, with `getToken`, renews it before it expires:
  // a minute before its `exp`, or after two thirds of what is left when that is less.
  #remember(token) {
    this.#token = token;
    clearTimeout(this.#renewal);
    const exp = expiry(token);
    if (!this.#getToken || exp === undefined || this.#closed) return;
    const left = exp - Date.now();
    this.#renewal = setTimeout(() => this.#renew(exp), Math.max(0, left - Math.min(60000, left / 3)));
  }

  // A renewal whose `getToken` fails is tried again every 5 s while the old token lasts; after
  // that the server refuses the old one and `tokenNeeded` takes over.
  async #renew(exp) {
    const token = await ask(this.#getToken);
    if (this.#closed) return;
    if (token && this.#sameUser(token)) return this.setToken(token);
    if (Date.now() < exp) this.#renewal = setTimeout(() => this.#renew(exp), 5000);
  }

  #dispatch(kind, payload) {
    if (kind === "state") this.#state = payload;
    if (kind === "outbox") this.#outbox = payload.queued;
    // The core hands on the server's cursors as they come (all of a room's, or one that
    // changed); each room keeps them by connection and its listeners get the whole list.
    if (kind === "cursors") payload = { room: payload.room, cursors: this.#rooms.get(payload.room)?._fold(payload) ?? [] };
    if (kind === "acked") this.#settle(payload.id, (w) => w.resolve({ id: payload.id, seq: payload.seq }));
    if (kind === "publishFailed") this.#settle(payload.id, (w) => w.reject(new ChorusError(payload.code, payload.message)));
    if (kind === "expired") this.#settle(payload.id, (w) => w.reject(new ChorusError("expired", "the publish was not acknowledged in time")));
    if (kind === "tokenNeeded" && this.#getToken) {
      ask(this.#getToken).then((token) => {
        if (this.#closed) return;
        // A token for another user counts as none (asked again after the next backoff step).
        if (!this.#sameUser(token)) token = "";
        this._call(TOKEN, "", token);
        if (token) this.#remember(token);
      });
    }
    // A stream step arrives beside its room: one flat shape, like the others.
    if (kind === "stream") payload = { room: payload.room, ...payload.stream };
    this._emit(kind, payload);
    // Every payload with a `room` concerns that room: its listeners (`room.on`) get it too.
    const room = this.#rooms.get(payload.room);
    if (kind === "stream") room?._stream(payload);
    room?._emit(kind, payload);
  }

  #settle(id, action) {
    const waiter = this.#waiting.get(id);
    if (waiter) {
      this.#waiting.delete(id);
      action(waiter);
    }
  }
}

export class Room extends Emitter {
  #client;
  // The others' live cursors by connection.
  #cursors = new Map();
  // Streams seen in this room by id: chunks at their index (`c`), the end (`e`: `{ seq }` or a
  // ChorusError) and the iterators waiting for more (`w`).
  #streams = new Map();

  constructor(client, name) {
    super();
    this.#client = client;
    this.name = name;
  }

  /** The client this room belongs to. */
  get client() {
    return this.#client;
  }

  /** Publishes a durable event; resolves with `{ id, seq }` once stored (queued while offline). */
  publish(body) {
    return this.#client._publish(this.name, body);
  }

  /** Sends an ephemeral event (cursor, progress) if connected; returns its id. */
  publishEphemeral(body) {
    return this.#client._call(EPHEMERAL, this.name, json(body));
  }

  /** Says whether the user is typing (throttled; stops by itself when idle or on publish). */
  typing(on) {
    this.#client._call(TYPING, this.name, String(!!on));
  }

  /** Replaces this tab's presence meta. */
  setPresence(meta) {
    this.#client._call(SET_PRESENCE, this.name, json(meta));
  }

  /** Everyone present now. */
  presence() {
    return this.#client._call(PRESENCE, this.name, "");
  }

  /**
   * Replaces this tab's live cursor (any small JSON: position, selection, viewport; `null`
   * removes it). At most one frame per 50 ms goes out, the last value always among them, and
   * it is sent again after a reconnect.
   */
  setCursor(value) {
    this.#client._call(SET_CURSOR, this.name, json(value));
  }

  /** The other members' live cursors now: `[{ conn, user, value }]`, one per connection. */
  cursors() {
    return [...this.#cursors.values()];
  }

  _fold({ cursors, cursor }) {
    if (cursors) this.#cursors = new Map(cursors.map((c) => [c.conn, c]));
    else if (cursor.value === null) this.#cursors.delete(cursor.conn);
    else this.#cursors.set(cursor.conn, cursor);
    return this.cursors();
  }

  /**
   * One page of stored events, oldest first. With `after`: the first `limit` events after that
   * seq. Otherwise the last `limit` events before `before` (default: the newest ones).
   * `limit` is 1 to 1000 (default 50). With `type` (the body's top-level `"type"`) and/or
   * `user` (the sender), only those events: the server filters, looking at a bounded number
   * of events per page, so a page may hold fewer than `limit` (even none) while `older`
   * (`newer` with `after`) says where to go on.
   */
  async history({ before, after, limit = 50, type, user } = {}) {
    limit = Math.min(1000, Math.max(1, Math.floor(limit)));
    const page = (head, events) => ({
      room: this.name,
      epoch: head.epoch,
      head: head.head,
      oldest: head.oldest,
      events,
      older: events.length && events[0].seq > head.oldest ? events[0].seq : null,
      newer: events.length && events.at(-1).seq < head.head ? events.at(-1).seq : null,
    });
    if (type ?? user) {
      const answer = await this.#client._page(this.name, { type, user, limit, [after === undefined ? "before" : "after"]: after ?? before ?? 2 ** 53 });
      const found = page(answer, answer.events);
      found[after === undefined ? "older" : "newer"] = answer.next_before ?? answer.next_after ?? null;
      return found;
    }
    if (after !== undefined) {
      const answer = await this.#client._page(this.name, { after, limit });
      return page(answer, answer.events);
    }
    let head = before === undefined ? await this.#client._page(this.name, { after: 0, limit: 1 }) : undefined;
    const end = before ?? head.head + 1;
    // The window (end - 1 - limit, end): read forward until it is covered (a page may stop
    // early at the server's answer size limit).
    let from = Math.max(0, end - 1 - limit);
    const events = [];
    while (from < end - 1) {
      const answer = await this.#client._page(this.name, { after: from, limit: end - 1 - from });
      head = answer;
      for (const event of answer.events) if (event.seq < end) events.push(event);
      if (answer.next_after === undefined || !answer.events.length) break;
      from = answer.events.at(-1).seq;
    }
    head ??= await this.#client._page(this.name, { after: 0, limit: 1 });
    return page(head, events);
  }

  /** Pages of older and older events (as `history`, filtered alike), from `before` (default: the newest). */
  async *historyPages({ before, limit = 50, type, user } = {}) {
    for (;;) {
      const page = await this.history({ before, limit, type, user });
      if (page.events.length) yield page;
      if (page.older === null) return;
      before = page.older;
    }
  }

  #s(id) {
    let s = this.#streams.get(id);
    if (!s) this.#streams.set(id, (s = { c: [], w: [] }));
    return s;
  }

  // A `stream` step: chunks land at their index (one already there is kept), then the end.
  _stream(f) {
    const s = this.#s(f.id);
    f.chunks?.forEach((chunk, j) => (s.c[(f.n ?? 0) + j] ??= chunk));
    if (f.op == "finish") s.e ??= { seq: f.seq };
    if (f.op == "fail") s.e ??= new ChorusError(f.code, f.message);
    s.w.splice(0).map((wake) => wake());
  }

  /**
   * A stream's chunks as they come, from its first (text pieces, or progress objects), until
   * it finishes; throws a `ChorusError` (`stream_failed`, `stream_abandoned`) if it fails.
   */
  async *stream(id) {
    const s = this.#s(id);
    for (let i = 0; ; await new Promise((wake) => s.w.push(wake))) {
      while (i < s.c.length) if (s.c[i++] !== undefined) yield s.c[i - 1];
      if (s.e instanceof Error) throw s.e;
      if (s.e) return;
    }
  }

  /**
   * Starts a stream this tab produces (`kind`: `text` or `progress`, `meta`, `id`); returns a
   * handle: `append(chunk)`, `finish()` (resolves with `{ id, seq }` once the result is
   * stored), `fail(message)`. Each step throws `offline` while disconnected.
   */
  startStream({ kind = "text", meta, id = `s${Math.random().toString(36).slice(2)}` } = {}) {
    let n = 0;
    const send = (op, rest) => this.#client._call(STREAM, this.name, json({ id, op, kind, meta, ...rest }));
    send("start");
    return {
      id,
      // The index moves on once the chunk is sent: one refused `offline` takes none.
      append: (chunk) => {
        send("append", { n, chunk });
        n++;
      },
      finish: async () => {
        send("finish");
        for await (const _ of this.stream(id));
        return { id, seq: this.#s(id).e.seq };
      },
      fail: (message) => send("fail", { message }),
    };
  }

  /** Leaves the room; its listeners get nothing more. */
  leave() {
    this.#client._leave(this.name);
  }
}
