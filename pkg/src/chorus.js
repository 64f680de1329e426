// The JS-shaped API of the Chorus client. The client core (connection, fallback, outbox,
// merge, presence, typing) runs in WebAssembly; this file only adapts it to idiomatic JS:
// an event emitter, Room objects and promises for acknowledgements.
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
const TRANSPORTS = ["auto", "websocket", "polling"];
// JSON text for the core; what JSON cannot carry (`undefined`, a function) reaches it as
// `undefined`, which the core refuses with `invalid_json`.
const json = (value) => String(JSON.stringify(value));

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

export class ChorusClient {
  #core;
  #listeners = new Map();
  #waiting = new Map();
  #rooms = new Map();
  #state = { state: "connecting", badge: "syncing" };
  #outbox = 0;
  #getToken;
  // Events raised while the app is still setting up (subscribing, joining) wait for the next
  // task, so e.g. publishes restored after a reload reach listeners registered after join().
  #held = [];

  /**
   * Connects (after loading the WebAssembly module). Options: `url` (the server, e.g.
   * `location.origin`), `token` or `getToken` (async, also called when the token is refused),
   * `transport` (`auto` | `websocket` | `polling`), `storagePrefix`.
   */
  static async connect(options) {
    await load(options.wasmUrl);
    const token = options.token ?? (await options.getToken());
    return new ChorusClient(options, token);
  }

  constructor(options, token) {
    if (!options?.url) throw new TypeError("options.url is required");
    const transport = TRANSPORTS.indexOf(options.transport ?? "auto");
    if (transport < 0) throw new TypeError(`options.transport must be auto, websocket or polling, not ${JSON.stringify(options.transport)}`);
    this.#getToken = options.getToken;
    const onEvent = (kind, text) => {
      const payload = JSON.parse(text);
      this.#held ? this.#held.push([kind, payload]) : this.#dispatch(kind, payload);
    };
    // The browser I/O reports to the core through a plain function (see `start` in js.rs).
    const report = (kind, id, number, text) => this.#core.report(kind, id, number, text);
    this.#core = WasmClient.start(options.url, token, transport, options.storagePrefix ?? "chorus:", onEvent, report);
    if (!this.#core) throw new ChorusError("no_randomness", "crypto.getRandomValues is not available");
    setTimeout(() => {
      const held = this.#held;
      this.#held = null;
      for (const [kind, payload] of held) this.#dispatch(kind, payload);
    }, 0);
  }

  /** Subscribes to `state`, `event`, `pending`, `acked`, `publishFailed`, `expired`, `outbox`,
   * `presence`, `typing`, `reset`, `joined`, `error`; returns the unsubscribe function. */
  on(kind, listener) {
    if (!this.#listeners.has(kind)) this.#listeners.set(kind, new Set());
    this.#listeners.get(kind).add(listener);
    return () => this.#listeners.get(kind)?.delete(listener);
  }

  /** The connection state (`state`, `badge`: `live` | `syncing` | `offline`, ...). */
  get state() {
    return this.#state;
  }

  /** Publishes waiting for the server's ack (sent when back online). */
  get queued() {
    return this.#outbox;
  }

  /** Joins a room (or updates this tab's presence meta in it). */
  join(name, { meta = null } = {}) {
    this._call(JOIN, name, json(meta));
    let room = this.#rooms.get(name);
    if (!room) {
      room = new Room(this, name);
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** Closes the client. */
  close() {
    this._call(CLOSE, "", "");
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
    return new Promise((resolve, reject) => this.#waiting.set(id, { resolve, reject, id }));
  }

  _leave(name) {
    this.#rooms.delete(name);
    this._call(LEAVE, name, "");
  }

  #dispatch(kind, payload) {
    if (kind === "state") this.#state = payload;
    if (kind === "outbox") this.#outbox = payload.queued;
    if (kind === "acked") this.#settle(payload.id, (w) => w.resolve({ id: payload.id, seq: payload.seq }));
    if (kind === "publishFailed") this.#settle(payload.id, (w) => w.reject(new ChorusError(payload.code, payload.message)));
    if (kind === "expired") this.#settle(payload.id, (w) => w.reject(new ChorusError("expired", "the publish was not acknowledged in time")));
    if (kind === "tokenNeeded" && this.#getToken) {
      Promise.resolve(this.#getToken()).then((token) => this._call(TOKEN, "", token));
    }
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

  #settle(id, action) {
    const waiter = this.#waiting.get(id);
    if (waiter) {
      this.#waiting.delete(id);
      action(waiter);
    }
  }
}

export class Room {
  #client;

  constructor(client, name) {
    this.#client = client;
    this.name = name;
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

  /** Leaves the room. */
  leave() {
    this.#client._leave(this.name);
  }
}
