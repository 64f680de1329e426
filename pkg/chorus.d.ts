// Typings for the Chorus client (hand-written: the WebAssembly bindings underneath are an
// implementation detail).

export type Transport = "websocket" | "polling";
export type Badge = "live" | "syncing" | "offline";

/**
 * Every `ChorusError.code` and server error code. The client's own: `invalid_room`,
 * `invalid_json`, `not_joined`, `outbox_full`, `offline`, `closed`, `no_randomness`, `expired`,
 * `invalid_lock`;
 * the rest are the server's (docs/PROTOCOL.md, "Error codes"). A test keeps this list equal to
 * the Rust codes.
 */
export type ErrorCode =
  | "invalid_room"
  | "invalid_json"
  | "not_joined"
  | "outbox_full"
  | "offline"
  | "closed"
  | "no_randomness"
  | "expired"
  | "invalid_lock"
  | "bad_frame"
  | "unknown_type"
  | "frame_too_large"
  | "unauthenticated"
  | "token_expired"
  | "forbidden"
  | "too_many_rooms"
  | "meta_too_large"
  | "conflict"
  | "storage_unavailable"
  | "slow_consumer"
  | "idle_timeout"
  | "draining"
  | "not_found"
  | "bad_request"
  | "internal"
  | "rate_limited"
  | "too_many_connections"
  | "too_many_polls"
  | "forbidden_origin"
  | "body_too_large"
  | "not_ready"
  | "lock_held"
  | "lock_lost";

export interface ClientOptions {
  /** The Chorus server, e.g. `https://rt.example.com` or `location.origin`. */
  url: string;
  /** An access token (JWT) from your backend. */
  token?: string;
  /**
   * Fetches a token: asked when there is no `token`, when the server refuses the current one,
   * and before it expires (from the JWT's `exp`). Throwing or rejecting is a passing failure,
   * retried with the reconnect backoff.
   */
  getToken?: () => string | Promise<string>;
  /** `auto` (default): WebSocket, falling back to polling; or force one transport. */
  transport?: "auto" | Transport;
  /** Prefix of the localStorage keys (outbox, remembered transport). Default `chorus:`. */
  storagePrefix?: string;
  /** Where the .wasm file is, if not next to the module. */
  wasmUrl?: string | URL;
}

export interface ConnectionState {
  state: "connecting" | "connected" | "reconnecting" | "offline" | "failed" | "closed";
  badge: Badge;
  transport?: Transport;
  attempt?: number;
  retryInMs?: number;
  reason?: string;
}

/** A stored event: it has a `seq` (its position in the room's history). */
export interface StoredEvent<Body = unknown> {
  room: string;
  seq: number;
  id: string;
  from: string;
  /** Milliseconds since the Unix epoch. */
  at: number;
  body: Body;
}

/** An ephemeral event (`publishEphemeral`): never stored, so no `seq`. */
export interface EphemeralEvent<Body = unknown> {
  room: string;
  seq?: undefined;
  id: string;
  from: string;
  at: number;
  body: Body;
}

/** The `event` payload: every event once, in order per room; `own` confirms a `pending` one. */
export type ReceivedEvent<Body = unknown> = (StoredEvent<Body> | EphemeralEvent<Body>) & { own: boolean };

export interface PresenceConn<Meta = unknown> {
  conn: string;
  meta: Meta;
  since: number;
}

export interface PresenceUser<Meta = unknown> {
  user: string;
  name?: string;
  conns: PresenceConn<Meta>[];
}

/** A grant of a room's named lock. */
export interface LockInfo {
  name: string;
  /** The fencing token: strictly increasing per lock; state it with `publish(body, { ifLock })`. */
  token: number;
  /** The holder. */
  user: string;
  /** The holder's connection (as in presence). */
  conn: string;
  /** Until when it holds without a renewal (ms since the Unix epoch); when it ended, once ended. */
  until: number;
}

/** What `room.lock()` resolves with: the grant, and what can be done with it. */
export interface LockHandle extends LockInfo {
  /** Releases the grant; resolves with it as released, rejects with `lock_lost` when it was gone. */
  release(): Promise<LockInfo>;
  /** Renews the grant for `ttl` ms from now (default: the TTL it was taken with). */
  renew(options?: { ttl?: number }): Promise<LockInfo>;
}

/** The events of one room (`room.on`); `client.on` gets the same payloads for every room. */
export interface RoomEventMap<Body = unknown, Meta = unknown> {
  joined: { room: string; cursor: { epoch: number; seq: number } };
  /** An own publish, shown at once. */
  pending: { room: string; id: string; body: Body };
  event: ReceivedEvent<Body>;
  acked: { room: string; id: string; seq: number };
  publishFailed: { room: string; id: string; code: ErrorCode; message: string };
  expired: { room: string; id: string };
  presence: { room: string; users: PresenceUser<Meta>[] };
  typing: { room: string; users: string[] };
  /** The room's history could not be resumed: refetch it. */
  reset: { room: string; reason: "epoch_changed" | "history_trimmed" | "cursor_ahead" | "history_unavailable" };
  /** A refusal about this room (e.g. `forbidden` when a renewed token no longer grants it). */
  error: { code: ErrorCode; message: string; room: string };
  /** The locks held in the room changed (granted, renewed, released, expired): all of them now. */
  lock: { room: string; locks: LockInfo[] };
  /** A lock request of this client was answered (also its automatic renewals). */
  lockDone: { room: string; id: string; change: "granted" | "renewed" | "released"; lock: LockInfo };
  /** A lock request of this client was refused (`lock_held`, `lock_lost`, ...). */
  lockFailed: { room: string; id: string; code: ErrorCode; message: string };
}

export interface EventMap extends Omit<RoomEventMap, "error"> {
  state: ConnectionState;
  welcome: { user: string };
  outbox: { queued: number };
  error: { code: ErrorCode; message: string; room?: string };
  tokenNeeded: Record<string, never>;
}

/** One page of a room's history, oldest first. */
export interface HistoryPage<Body = unknown> {
  room: string;
  epoch: number;
  /** The room's newest seq when the page was read. */
  head: number;
  /** The oldest seq still kept. */
  oldest: number;
  events: StoredEvent<Body>[];
  /** Pass as `before` for the page before this one; `null` when there is none. */
  older: number | null;
  /** Pass as `after` for the page after this one; `null` when this page reaches the head. */
  newer: number | null;
}

export interface HistoryOptions {
  /** Events before this seq (default: the newest events). */
  before?: number;
  /** Events after this seq instead (oldest first from there). */
  after?: number;
  /** 1 to 1000; default 50. */
  limit?: number;
}

/** Thrown (or rejected with) when a call is refused; see pkg/README.md, "Errors". */
export class ChorusError extends Error {
  readonly code: ErrorCode;
}

export function load(wasmUrl?: string | URL): Promise<unknown>;

export class ChorusClient {
  static connect(options: ClientOptions): Promise<ChorusClient>;
  on<K extends keyof EventMap>(kind: K, listener: (payload: EventMap[K]) => void): () => void;
  readonly state: ConnectionState;
  /** Publishes waiting for the server's ack. */
  readonly queued: number;
  join<Body = unknown, Meta = unknown>(room: string, options?: { meta?: Meta }): Room<Body, Meta>;
  /** A fresh token; a connected WebSocket renews it in place. */
  setToken(token: string): void;
  /** Closes the client; publishes still waiting reject with `closed`. */
  close(): void;
}

export class Room<Body = unknown, Meta = unknown> {
  readonly name: string;
  /** The client this room belongs to. */
  readonly client: ChorusClient;
  on<K extends keyof RoomEventMap>(kind: K, listener: (payload: RoomEventMap<Body, Meta>[K]) => void): () => void;
  /**
   * Resolves once stored; stays queued (and survives reloads) while offline. With `ifLock`,
   * stored only while this user holds that grant (else rejects with `lock_lost`).
   */
  publish(body: Body, options?: { ifLock?: LockHandle | { name: string; token: number } }): Promise<{ id: string; seq: number }>;
  /**
   * Takes the lock `name` for `ttl` ms (default 30000), renewed at half its TTL while held
   * unless `renew` is false; rejects with `lock_held` (someone else holds it).
   */
  lock(name: string, options?: { ttl?: number; renew?: boolean }): Promise<LockHandle>;
  /** The locks held in the room now. */
  locks(): LockInfo[];
  publishEphemeral(body: Body): string;
  typing(on: boolean): void;
  setPresence(meta: Meta): void;
  presence(): PresenceUser<Meta>[];
  history(options?: HistoryOptions): Promise<HistoryPage<Body>>;
  historyPages(options?: { before?: number; limit?: number }): AsyncIterableIterator<HistoryPage<Body>>;
  leave(): void;
}
