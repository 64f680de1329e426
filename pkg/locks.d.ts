// Typings for `@chorus/client/locks` (src/locks.js).
import type { ChorusClient, ClientOptions, ErrorCode, Room } from "./chorus.js";
export { ChorusClient, ChorusError } from "./chorus.js";

/** One grant of a named lock in a room. */
export interface LockGrant {
  /** The lock's name (event id rules: 1 to 64 of `A-Z a-z 0-9 _ - . :`). */
  readonly name: string;
  /** The fencing token: strictly increasing per lock, across releases, restarts and nodes. */
  readonly token: number;
  /** The holder's user id. */
  readonly user: string;
  /** The holder's connection (as in presence). */
  readonly conn: string;
  /** Until when it lasts without a renewal, milliseconds since the Unix epoch (for a released grant: when it ended). */
  readonly until: number;
}

export interface AcquireOptions {
  /** How long the grant lasts without a renewal: 1 to 3,600,000 ms; default 30,000. */
  ttlMs?: number;
  /** Renew it at half its TTL (and on a new connection) until released or lost; default true. */
  autoRenew?: boolean;
}

/**
 * Connects like `ChorusClient.connect`, with the module built with locks (`chorus_locks_bg.wasm`).
 * It must be the page's first client (a `TypeError` if the page already loaded the core module).
 */
export function connect(options: ClientOptions): Promise<ChorusClient>;

/** The locks of a joined room of a client made by this entry's `connect`. */
export function locks(room: Room<any, any>): RoomLocks;

export class RoomLocks {
  constructor(room: Room<any, any>);
  readonly room: Room<any, any>;
  /** Every grant held in the room now, as the server last reported. */
  held(): LockGrant[];
  /** The grant of `name` held now. */
  holder(name: string): LockGrant | undefined;
  /** Calls `listener(grants)` whenever the room's locks change; returns an unsubscribe function. */
  onChange(listener: (grants: LockGrant[]) => void): () => void;
  /** Resolves with the grant; rejects with `lock_held`, `too_many_locks`, `offline`, `not_joined`, `invalid_lock` or `closed`. */
  acquire(name: string, options?: AcquireOptions): Promise<LockGrant>;
  /** Renews the grant on this connection; rejects with `lock_lost` when it is gone. */
  renew(grant: Pick<LockGrant, "name" | "token">, options?: AcquireOptions): Promise<LockGrant>;
  /** Releases the grant (and stops renewing it); resolves with the released grant. */
  release(grant: Pick<LockGrant, "name" | "token">): Promise<LockGrant>;
  /** Publishes durably only while `grant` is the publisher's; rejects with `lock_lost` (nothing stored). */
  publish(body: unknown, grant: Pick<LockGrant, "name" | "token">): Promise<{ id: string; seq: number }>;
}

// The events a client made by this entry's `connect` adds (`room.on` and `client.on`).
declare module "./chorus.js" {
  interface RoomEventMap<Body, Meta> {
    /** The room's locks changed: every grant held in it now (what `onChange` hands on). */
    lock: { room: string; locks: LockGrant[] };
    /** A lock request of this client was answered (`RoomLocks` settles its promise with it). */
    lockDone: { room: string; id: string; change: "granted" | "renewed" | "released" | "expired"; lock: LockGrant };
    /** A lock request of this client was refused (`RoomLocks` rejects its promise with it). */
    lockFailed: { room: string; id: string; code: ErrorCode; message: string };
  }
}
