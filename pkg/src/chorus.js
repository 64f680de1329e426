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
const LOCK = 9;
const UNLOCK = 10;
const PUBLISH_FENCED = 11;
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

// A JWT's `exp` in milliseconds since the epoch, or undefined when it has none (or is no JWT).
function expiry(token) {
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof claims.exp === "number" ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
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
  // Lock requests waiting for their answer, by request id.
  #locking = new Map();
  #rooms = new Map();
  #state = { state: "connecting", badge: "syncing" };
  #outbox = 0;
  #url;
  #token = "";
  #getToken;
  #renewal;
  #closed = false;
  // Events raised while the app is still setting up (subscribing, joining) wait for the next
  // task, so e.g. publishes restored after a reload reach listeners registered after join().
  #held = [];

  /**
   * Connects (after loading the WebAssembly module). Options: `url` (the server, e.g.
   * `location.origin`), `token` and/or `getToken` (async; asked when there is no token, when
   * the server refuses it, and before it expires), `transport` (`auto` | `websocket` |
   * `polling`), `storagePrefix`, `wasmUrl`.
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
    const onEvent = (kind, text) => {
      const payload = JSON.parse(text);
      this.#held ? this.#held.push([kind, payload]) : this.#dispatch(kind, payload);
    };
    // The browser I/O reports to the core through a plain function (see `start` in js.rs).
    const report = (kind, id, number, text) => this.#core.report(kind, id, number, text);
    this.#core = WasmClient.start(options.url, token ?? "", transport, options.storagePrefix ?? "chorus:", onEvent, report);
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
    this._call(TOKEN, "", token);
    this.#remember(token);
  }

  /** Closes the client; publishes still waiting for their ack reject with `closed`. */
  close() {
    this.#closed = true;
    clearTimeout(this.#renewal);
    this._call(CLOSE, "", "");
    const error = new ChorusError("closed", "the client was closed before the publish was acknowledged");
    for (const waiter of [...this.#waiting.values(), ...this.#locking.values()]) waiter.reject(error);
    this.#waiting.clear();
    this.#locking.clear();
  }

  /** Runs one operation of the core; throws a `ChorusError` when it is refused. */
  _call(op, room, arg) {
    const answer = JSON.parse(this.#core.call(op, room, arg));
    if (answer.code) throw new ChorusError(answer.code, answer.message);
    return answer.ok;
  }

  _publish(room, body, ifLock) {
    return this.#request(this.#waiting, () =>
      ifLock ? this._call(PUBLISH_FENCED, room, `${ifLock.token}~${ifLock.name}~${json(body)}`) : this._call(PUBLISH, room, json(body)),
    );
  }

  // A lock operation (`arg` as `op::LOCK` and `op::UNLOCK` say): resolves with the grant.
  _lock(op, room, arg) {
    return this.#request(this.#locking, () => this._call(op, room, arg));
  }

  #request(waiting, call) {
    let id;
    try {
      id = call();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
  }

  _leave(name) {
    this.#rooms.delete(name);
    this._call(LEAVE, name, "");
  }

  /** `GET /v1/rooms/{room}/events?after=&limit=` with the current token (renewed once if refused). */
  async _page(room, after, limit) {
    for (let renewed = false; ; renewed = true) {
      const response = await fetch(`${this.#url}/v1/rooms/${encodeURIComponent(room)}/events?after=${after}&limit=${limit}`, {
        headers: { authorization: `Bearer ${this.#token}` },
      }).catch((error) => {
        throw new ChorusError("offline", `the history request got no answer: ${error.message}`);
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) return body;
      if (response.status === 401 && !renewed && this.#getToken) {
        const token = await ask(this.#getToken);
        if (token && !this.#closed) {
          this.setToken(token);
          continue;
        }
      }
      throw new ChorusError(body.code ?? "internal", body.message ?? `the history request failed with HTTP ${response.status}`);
    }
  }

  // Keeps the token for history requests and, with `getToken`, renews it before it expires:
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
    if (token) return this.setToken(token);
    if (Date.now() < exp) this.#renewal = setTimeout(() => this.#renew(exp), 5000);
  }

  #dispatch(kind, payload) {
    // One shape per kind: an event is flat (the event's fields and `own`), like `pending`.
    if (kind === "event") payload = { ...payload.event, own: payload.own };
    if (kind === "state") this.#state = payload;
    if (kind === "outbox") this.#outbox = payload.queued;
    if (kind === "acked") this.#settle(payload.id, (w) => w.resolve({ id: payload.id, seq: payload.seq }));
    if (kind === "publishFailed") this.#settle(payload.id, (w) => w.reject(new ChorusError(payload.code, payload.message)));
    if (kind === "lockDone") this.#settle(payload.id, (w) => w.resolve(payload.lock), this.#locking);
    if (kind === "lockFailed") this.#settle(payload.id, (w) => w.reject(new ChorusError(payload.code, payload.message)), this.#locking);
    if (kind === "expired") this.#settle(payload.id, (w) => w.reject(new ChorusError("expired", "the publish was not acknowledged in time")));
    if (kind === "tokenNeeded" && this.#getToken) {
      ask(this.#getToken).then((token) => {
        if (this.#closed) return;
        this._call(TOKEN, "", token);
        if (token) this.#remember(token);
      });
    }
    this._emit(kind, payload);
    // Every payload with a `room` concerns that room: its listeners (`room.on`) get it too.
    if (payload.room !== undefined) this.#rooms.get(payload.room)?._emit(kind, payload);
  }

  #settle(id, action, waiting = this.#waiting) {
    const waiter = waiting.get(id);
    if (waiter) {
      waiting.delete(id);
      action(waiter);
    }
  }
}

export class Room extends Emitter {
  #client;
  #locks = [];

  constructor(client, name) {
    super();
    this.#client = client;
    this.name = name;
    this.on("lock", (change) => (this.#locks = change.locks));
  }

  /** The client this room belongs to. */
  get client() {
    return this.#client;
  }

  /**
   * Publishes a durable event; resolves with `{ id, seq }` once stored (queued while offline).
   * With `ifLock` (a lock handle, or `{ name, token }`) it is stored only while this user holds
   * that grant, and rejects with `lock_lost` otherwise.
   */
  publish(body, { ifLock } = {}) {
    return this.#client._publish(this.name, body, ifLock);
  }

  /**
   * Takes the lock `name` for `ttl` ms (default 30000); resolves with a handle (`name`,
   * `token`, `user`, `conn`, `until`, `release()`, `renew({ ttl })`) or rejects with
   * `lock_held`. With `renew` (default true) the grant is renewed at half its TTL while held.
   */
  async lock(name, { ttl = 30000, renew = true } = {}) {
    const grant = await this.#client._lock(LOCK, this.name, `${ttl}~${renew ? 1 : 0}~~${name}`);
    const room = this;
    return {
      ...grant,
      release: () => room.#client._lock(UNLOCK, room.name, `${grant.token}~${name}`),
      renew: ({ ttl: again = ttl } = {}) => room.#client._lock(LOCK, room.name, `${again}~0~${grant.token}~${name}`),
    };
  }

  /** The locks held in the room now (`name`, `token`, `user`, `conn`, `until`). */
  locks() {
    return this.#locks;
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
   * One page of stored events, oldest first. With `after`: the first `limit` events after that
   * seq. Otherwise the last `limit` events before `before` (default: the newest ones).
   * `limit` is 1 to 1000 (default 50).
   */
  async history({ before, after, limit = 50 } = {}) {
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
    if (after !== undefined) {
      const answer = await this.#client._page(this.name, after, limit);
      return page(answer, answer.events);
    }
    let head = before === undefined ? await this.#client._page(this.name, 0, 1) : undefined;
    const end = before ?? head.head + 1;
    // The window (end - 1 - limit, end): read forward until it is covered (a page may stop
    // early at the server's answer size limit).
    let from = Math.max(0, end - 1 - limit);
    const events = [];
    while (from < end - 1) {
      const answer = await this.#client._page(this.name, from, end - 1 - from);
      head = answer;
      for (const event of answer.events) if (event.seq < end) events.push(event);
      if (answer.next_after === undefined || !answer.events.length) break;
      from = answer.events.at(-1).seq;
    }
    head ??= await this.#client._page(this.name, 0, 1);
    return page(head, events);
  }

  /** Pages of older and older events (as `history`), from `before` (default: the newest). */
  async *historyPages({ before, limit = 50 } = {}) {
    for (;;) {
      const page = await this.history({ before, limit });
      if (page.events.length) yield page;
      if (page.older === null) return;
      before = page.older;
    }
  }

  /** Leaves the room; its listeners get nothing more. */
  leave() {
    this.#client._leave(this.name);
  }
}
