// `@chorus/client/locks`: locks (leases) in rooms, docs/PROTOCOL.md "Locks". The lock requests,
// their answers, auto-renewal and the room's locks live in the client core, in a module built
// with them (`chorus_locks_bg.wasm`): the core entry's module is built without, so apps that use
// no locks do not download them (docs/SIZE.md). `connect` here loads that module; everything else
// is the core entry's API, with `locks(room)` added.
import { ChorusClient, ChorusError, load } from "./chorus.js";

// The lock operations of `WasmClient.call` (`op::LOCK_OPS` in sdk/src/js_abi.rs; a test checks).
const LOCK = 11;
const UNLOCK = 12;
const PUBLISH_FENCED = 13;
const LOCKS = 14;

/**
 * Connects like `ChorusClient.connect` (same options), with the module built with locks. It must
 * be the page's first client: the module loads once, and a page that already loaded the core
 * entry's gets a TypeError here.
 */
export async function connect(options) {
  await load(options?.wasmUrl ?? new URL("./chorus_locks_bg.wasm", import.meta.url));
  const client = await ChorusClient.connect(options);
  try {
    client._call(LOCKS, "probe", "");
  } catch (error) {
    client.close();
    throw new TypeError(`this page loaded the Chorus module without locks before (${error.message}): connect through @chorus/client/locks first`);
  }
  return client;
}

/** The locks of a joined room (`room` from a client made by this entry's `connect`). */
export function locks(room) {
  return new RoomLocks(room);
}

export class RoomLocks {
  #room;

  constructor(room) {
    this.#room = room;
  }

  get room() {
    return this.#room;
  }

  /** Every grant held in the room now, as the server last reported: `[{ name, token, user, conn, until }]`. */
  held() {
    return this.#call(LOCKS, "");
  }

  /** The grant of `name` held now, or `undefined`. */
  holder(name) {
    return this.held().find((grant) => grant.name === name);
  }

  /** Calls `listener(grants)` whenever the room's locks change; returns an unsubscribe function. */
  onChange(listener) {
    return this.#room.on("lock", (payload) => listener(payload.locks));
  }

  /**
   * Acquires `name` for `ttlMs` (default 30 s; 1 to 3,600,000). Resolves with the grant
   * (`{ name, token, user, conn, until }`); with `autoRenew` (default true) the client renews it
   * at half its TTL, and on a new connection, until it is released or lost. Rejects with
   * `lock_held` (another connection holds it), `too_many_locks`, `offline`, `not_joined` or
   * `invalid_lock`.
   */
  acquire(name, { ttlMs = 30000, autoRenew = true } = {}) {
    return this.#request(LOCK, { name, ttl_ms: ttlMs, auto: autoRenew });
  }

  /** Renews `grant` for `ttlMs` from now (on this connection). Rejects with `lock_lost` when it is gone. */
  renew(grant, { ttlMs = 30000, autoRenew = true } = {}) {
    return this.#request(LOCK, { name: grant.name, token: grant.token, ttl_ms: ttlMs, auto: autoRenew });
  }

  /** Releases `grant` (and stops renewing it). Resolves with the released grant. */
  release(grant) {
    return this.#request(UNLOCK, { name: grant.name, token: grant.token });
  }

  /**
   * Publishes `body` durably, stored only while `grant` is still the publisher's: resolves with
   * `{ id, seq }`, or rejects with `lock_lost` and nothing stored. Queued while offline, like a
   * publish (the grant is checked when it reaches the server).
   */
  publish(body, grant) {
    return this.#settled(PUBLISH_FENCED, { body, if_lock: { name: grant.name, token: grant.token } }, {
      acked: (p, resolve) => resolve({ id: p.id, seq: p.seq }),
      publishFailed: (p, _, reject) => reject(new ChorusError(p.code, p.message)),
      expired: (_, __, reject) => reject(new ChorusError("expired", "the publish was not acknowledged in time")),
    });
  }

  #request(op, arg) {
    return this.#settled(op, arg, {
      lockDone: (p, resolve) => resolve(p.lock),
      lockFailed: (p, _, reject) => reject(new ChorusError(p.code, p.message)),
    });
  }

  // Runs `op` and settles with the first of the room's events `answers` (by kind) that carries
  // its id; rejects with `closed` if the client closes first.
  #settled(op, arg, answers) {
    return new Promise((resolve, reject) => {
      let text;
      try {
        text = JSON.stringify(arg);
      } catch (error) {
        throw new ChorusError("invalid_json", `the value cannot become JSON: ${error.message}`);
      }
      const id = this.#call(op, text);
      const offs = Object.entries(answers).map(([kind, answer]) =>
        this.#room.on(kind, (payload) => {
          if (payload.id !== id) return;
          offs.forEach((off) => off());
          answer(payload, resolve, reject);
        }),
      );
      offs.push(
        this.#room.client.on("state", (state) => {
          if (state.state !== "closed") return;
          offs.forEach((off) => off());
          reject(new ChorusError("closed", "the client was closed before the answer came"));
        }),
      );
    });
  }

  #call(op, arg) {
    return this.#room.client._call(op, this.#room.name, arg);
  }
}

export { ChorusClient, ChorusError };
