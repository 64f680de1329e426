// Typings for the Chorus client (hand-written: the WebAssembly bindings underneath are an
// implementation detail).

export type Transport = "websocket" | "polling";
export type Badge = "live" | "syncing" | "offline";

export interface ClientOptions {
  /** The Chorus server, e.g. `https://rt.example.com` or `location.origin`. */
  url: string;
  /** An access token (JWT) from your backend. */
  token?: string;
  /** Fetches a token; also called when the server refuses the current one. */
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

export interface ChorusEvent<Body = unknown> {
  room: string;
  /** Absent for ephemeral events. */
  seq?: number;
  id: string;
  from: string;
  /** Milliseconds since the Unix epoch. */
  at: number;
  body: Body;
}

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

export type ErrorCode = string;

export interface EventMap {
  state: ConnectionState;
  welcome: { user: string };
  joined: { room: string; cursor: { epoch: number; seq: number } };
  /** An own publish, shown at once. */
  pending: { room: string; id: string; body: unknown };
  /** Every event once, in order per room; `own` marks the server's copy of a `pending` one. */
  event: { event: ChorusEvent; own: boolean };
  acked: { room: string; id: string; seq: number };
  publishFailed: { room: string; id: string; code: ErrorCode; message: string };
  expired: { room: string; id: string };
  outbox: { queued: number };
  presence: { room: string; users: PresenceUser[] };
  typing: { room: string; users: string[] };
  /** The room's history could not be resumed: refetch it. */
  reset: { room: string; reason: "epoch_changed" | "history_trimmed" | "cursor_ahead" | "history_unavailable" };
  error: { code: ErrorCode; message: string; room?: string };
  tokenNeeded: Record<string, never>;
}

/** Thrown (or rejected with) when a call is refused; see pkg/README.md, "Errors". */
export class ChorusError extends Error {
  /** `invalid_room`, `invalid_json`, `not_joined`, `outbox_full`, `offline`, `closed`,
   * `no_randomness`, or a server's code for a refused publish. */
  readonly code: ErrorCode;
}

export function load(wasmUrl?: string | URL): Promise<unknown>;

export class ChorusClient {
  static connect(options: ClientOptions): Promise<ChorusClient>;
  on<K extends keyof EventMap>(kind: K, listener: (payload: EventMap[K]) => void): () => void;
  readonly state: ConnectionState;
  /** Publishes waiting for the server's ack. */
  readonly queued: number;
  join<Meta = unknown>(room: string, options?: { meta?: Meta }): Room;
  close(): void;
}

export class Room {
  readonly name: string;
  /** Resolves once stored; stays queued (and survives reloads) while offline. */
  publish<Body = unknown>(body: Body): Promise<{ id: string; seq: number }>;
  publishEphemeral<Body = unknown>(body: Body): string;
  typing(on: boolean): void;
  setPresence<Meta = unknown>(meta: Meta): void;
  presence<Meta = unknown>(): PresenceUser<Meta>[];
  leave(): void;
}
