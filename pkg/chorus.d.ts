// Typings for the Chorus client (hand-written: the WebAssembly bindings underneath are an
// implementation detail).

export type Transport = "websocket" | "polling";
export type Badge = "live" | "syncing" | "offline";

/**
 * Every `ChorusError.code` and server error code. The client's own: `invalid_room`,
 * `invalid_json`, `not_joined`, `outbox_full`, `offline`, `closed`, `no_randomness`, `expired`,
 * `invalid_lock` (the locks entry);
 * the rest are the server's (docs/PROTOCOL.md, "Error codes"). A test keeps this list equal to
 * the Rust codes.
 */
export type ErrorCode =
  | "invalid_room"
  | "lock_held"
  | "lock_lost"
  | "too_many_locks"
  | "invalid_json"
  | "not_joined"
  | "outbox_full"
  | "invalid_lock"
  | "offline"
  | "closed"
  | "no_randomness"
  | "expired"
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
  | "cursor_too_large"
  | "stream_not_found"
  | "stream_conflict"
  | "stream_too_large"
  | "too_many_streams"
  | "stream_abandoned"
  | "stream_failed";

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
  /** Prefix of the localStorage keys (outbox, remembered transport), which are per server, user and tab. Default `chorus:`. */
  storagePrefix?: string;
  /** Where the .wasm file is, if not next to the module. */
  wasmUrl?: string | URL;
  /**
   * `true` (default): the tabs of this origin that connect to the same server share one
   * WebSocket (one tab leads, the others talk to it over a BroadcastChannel; each tab keeps its
   * own connection, rooms, presence and outbox); in polling mode they hold one long poll
   * between them. `false`: this client opens its own socket and holds its own polls.
   * Browsers without BroadcastChannel or the Web Locks API always do so per client.
   */
  shareConnection?: boolean;
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

/** Another connection's live cursor in a room (`room.cursors()`, the `cursors` event). */
export interface LiveCursor<Cursor = unknown> {
  /** The connection (as in presence: find its user's name and meta there). */
  conn: string;
  user: string;
  /** Exactly what that connection passed to `setCursor`. */
  value: Cursor;
}

/** A progress stream's chunk. */
export interface Progress {
  /** 0 to 100. */
  percent: number;
  /** What is being done now. */
  step?: string;
  /** Estimated time left, in milliseconds. */
  eta_ms?: number;
}

/**
 * The `stream` payload: one step of a stream in the room, as the server sent it. `start`
 * carries everything so far (a member joining mid-stream), `append` more chunks; chunk `k` of
 * `chunks` is the stream's chunk `n + k` (a chunk may come twice: keep the first).
 */
export interface StreamStep {
  room: string;
  id: string;
  from: string;
  /** Omitted for `text`. */
  kind?: "text" | "progress";
  op: "start" | "append" | "finish" | "fail";
  /** Index of the first chunk in `chunks` (omitted when 0). */
  n?: number;
  chunks?: (string | Progress)[];
  meta?: unknown;
  /** `finish`: the seq of the stored result (an event with the stream's id). */
  seq?: number;
  /** `fail`: `stream_failed` or `stream_abandoned`. */
  code?: ErrorCode;
  message?: string;
}

/** The body of the event a finished stream stores. */
export interface StreamResult {
  stream: "text" | "progress";
  /** A text stream's chunks, concatenated. */
  text?: string;
  /** A progress stream's last chunk. */
  progress?: Progress;
  meta?: unknown;
}

/** What `room.startStream()` returns: the producer's side of a stream. */
export interface StreamHandle<Chunk = string | Progress> {
  readonly id: string;
  /** Sends a chunk; throws `offline` while disconnected. */
  append(chunk: Chunk): void;
  /** Ends the stream; resolves once its result is stored. */
  finish(): Promise<{ id: string; seq: number }>;
  /** Ends the stream without a result. */
  fail(message?: string): void;
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
  /** The other members' live cursors changed (the full list; this tab's own is left out). */
  cursors: { room: string; cursors: LiveCursor[] };
  /** The room's history could not be resumed: refetch it. */
  reset: { room: string; reason: "epoch_changed" | "history_trimmed" | "cursor_ahead" | "history_unavailable" };
  /** A refusal about this room (e.g. `forbidden` when a renewed token no longer grants it). */
  error: { code: ErrorCode; message: string; room: string };
  stream: StreamStep;
}

/**
 * A notice from the application's backend (`client.on("notice")`): not a room event, never
 * stored; a client that was not connected when it was sent never gets it.
 */
export interface Notice<Body = unknown> {
  /** The backend's id for it (or one the server made). */
  id: string;
  level: "info" | "warning" | "critical";
  body: Body;
  /** When the server accepted it, milliseconds since the Unix epoch. */
  at: number;
}

export interface EventMap extends Omit<RoomEventMap, "error"> {
  state: ConnectionState;
  welcome: { user: string };
  outbox: { queued: number };
  error: { code: ErrorCode; message: string; room?: string };
  tokenNeeded: Record<string, never>;
  notice: Notice;
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

export interface HistoryOptions extends HistoryFilter {
  /** Events before this seq (default: the newest events). */
  before?: number;
  /** Events after this seq instead (oldest first from there). */
  after?: number;
  /** 1 to 1000; default 50. */
  limit?: number;
}

/** The activity feed: only some events, filtered by the server (a page may hold fewer than `limit`). */
export interface HistoryFilter {
  /** Only events whose body's top-level `"type"` is this string. */
  type?: string;
  /** Only events this user published (`from`). */
  user?: string;
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
  /** A fresh token for the same user (a `TypeError` for another `sub`); a connected WebSocket renews it in place. */
  setToken(token: string): void;
  /** Closes the client; publishes still waiting reject with `closed` and stay stored for the next client of this user. */
  close(): void;
  /** Closes the client and removes this user's stored outboxes (all tabs; never sent) and transports on this server. */
  signOut(): void;
}

export class Room<Body = unknown, Meta = unknown> {
  readonly name: string;
  /** The client this room belongs to. */
  readonly client: ChorusClient;
  on<K extends keyof RoomEventMap>(kind: K, listener: (payload: RoomEventMap<Body, Meta>[K]) => void): () => void;
  /** Resolves once stored; stays queued (and survives reloads) while offline. */
  publish(body: Body): Promise<{ id: string; seq: number }>;
  publishEphemeral(body: Body): string;
  typing(on: boolean): void;
  setPresence(meta: Meta): void;
  presence(): PresenceUser<Meta>[];
  /** This tab's live cursor (any small JSON; `null` removes it); throttled to one frame per 50 ms, the last value always sent. */
  setCursor(value: unknown): void;
  /** The other members' live cursors now. */
  cursors(): LiveCursor[];
  history(options?: HistoryOptions): Promise<HistoryPage<Body>>;
  historyPages(options?: { before?: number; limit?: number } & HistoryFilter): AsyncIterableIterator<HistoryPage<Body>>;
  /** A stream's chunks from its first, as they come; ends when it finishes, throws if it fails. */
  stream(id: string): AsyncIterableIterator<string | Progress>;
  /** Starts a stream this tab produces. */
  startStream(options?: { kind?: "text" | "progress"; meta?: unknown; id?: string }): StreamHandle;
  leave(): void;
}
