// The JS-shaped API of the Chorus client. The client core (connection, fallback, outbox,
// merge, presence, typing) runs in WebAssembly; this file only adapts it to idiomatic JS:
// an event emitter, Room objects and promises for acknowledgements.
import init, { WasmClient } from "../wasm/chorus.js";

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
    this.#getToken = options.getToken;
    this.#core = new WasmClient(options.url, token, options.transport ?? "auto", options.storagePrefix ?? "chorus:", (kind, text) => {
      const payload = JSON.parse(text);
      this.#held ? this.#held.push([kind, payload]) : this.#dispatch(kind, payload);
    }
    );
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
  get pending() {
    return this.#outbox;
  }

  /** Joins a room (or updates this tab's presence meta in it). */
  join(name, { meta = null } = {}) {
    this.#core.join(name, JSON.stringify(meta));
    let room = this.#rooms.get(name);
    if (!room) {
      room = new Room(this, this.#core, name);
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** Closes the client. */
  close() {
    this.#core.close();
  }

  _publish(room, body) {
    let id;
    try {
      id = this.#core.publish(room, JSON.stringify(body));
    } catch (error) {
      return Promise.reject(new ChorusError("outbox_full", String(error.message ?? error)));
    }
    return new Promise((resolve, reject) => this.#waiting.set(id, { resolve, reject, id }));
  }

  _leave(name) {
    this.#rooms.delete(name);
    this.#core.leave(name);
  }

  #dispatch(kind, payload) {
    if (kind === "state") this.#state = payload;
    if (kind === "outbox") this.#outbox = payload.pending;
    if (kind === "acked") this.#settle(payload.id, (w) => w.resolve({ id: payload.id, seq: payload.seq }));
    if (kind === "publishFailed") this.#settle(payload.id, (w) => w.reject(new ChorusError(payload.code, payload.message)));
    if (kind === "expired") this.#settle(payload.id, (w) => w.reject(new ChorusError("expired", "the publish was not acknowledged in time")));
    if (kind === "tokenNeeded" && this.#getToken) {
      Promise.resolve(this.#getToken()).then((token) => this.#core.setToken(token));
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
  #core;

  constructor(client, core, name) {
    this.#client = client;
    this.#core = core;
    this.name = name;
  }

  /** Publishes a durable event; resolves with `{ id, seq }` once stored (queued while offline). */
  publish(body) {
    return this.#client._publish(this.name, body);
  }

  /** Sends an ephemeral event (cursor, progress) if connected; returns its id. */
  publishEphemeral(body) {
    return this.#core.publishEphemeral(this.name, JSON.stringify(body));
  }

  /** Says whether the user is typing (throttled; stops by itself when idle or on publish). */
  typing(on) {
    this.#core.typing(this.name, on);
  }

  /** Replaces this tab's presence meta. */
  setPresence(meta) {
    this.#core.setPresence(this.name, JSON.stringify(meta));
  }

  /** Everyone present now. */
  presence() {
    return JSON.parse(this.#core.presence(this.name));
  }

  /** Leaves the room. */
  leave() {
    this.#client._leave(this.name);
  }
}
