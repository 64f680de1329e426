// Typings for `@chorus/client/store` (src/store.js).
import type { ConnectionState, ErrorCode, PresenceUser, Room } from "./chorus.js";

/**
 * One entry of a room's feed. `pending`: an own publish not stored yet (no `seq`, `from`, `at`);
 * `stored`: a stored event (`seq` set; entries are in seq order); `failed`: an own publish
 * refused for good or not acknowledged in time (`code`, `message`). Pending and failed entries
 * come after every stored one.
 */
export interface FeedEntry<Body = unknown> {
  readonly room: string;
  readonly id: string;
  readonly body: Body;
  /** One of this tab's publishes (pending, failed, or confirmed live); `false` for history. */
  readonly own: boolean;
  readonly status: "pending" | "stored" | "failed";
  readonly seq?: number;
  readonly from?: string;
  /** Milliseconds since the Unix epoch. */
  readonly at?: number;
  readonly code?: ErrorCode;
  readonly message?: string;
}

/** What a room store holds: frozen, and the same object until something changes. */
export interface RoomSnapshot<Body = unknown, Meta = unknown> {
  readonly feed: readonly FeedEntry<Body>[];
  readonly presence: readonly PresenceUser<Meta>[];
  /** User ids typing now, never your own. */
  readonly typing: readonly string[];
  readonly connection: ConnectionState;
}

export interface RoomStoreOptions {
  /** How many of the newest stored events to load into the feed (default 50; 0: none). */
  history?: number;
}

export interface RoomStore<Body = unknown, Meta = unknown> {
  readonly room: Room<Body, Meta>;
  /** Calls `listener(snapshot)` at once and after every change; returns an unsubscribe function. */
  subscribe(listener: (snapshot: RoomSnapshot<Body, Meta>) => void): () => void;
  getSnapshot(): RoomSnapshot<Body, Meta>;
  /** Stops following the room; the room stays joined. */
  close(): void;
}

export function roomStore<Body = unknown, Meta = unknown>(room: Room<Body, Meta>, options?: RoomStoreOptions): RoomStore<Body, Meta>;
