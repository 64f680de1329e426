// Typings for `@chorus/client/yjs` (src/yjs.js). `yjs` and `y-protocols` are peer dependencies.
import type * as Y from "yjs";
import type { Awareness } from "y-protocols/awareness";
import type { ChorusError, Room } from "./chorus.js";

export interface ChorusProviderOptions {
  /** The document's name in the room (event id rules: 1 to 64 of `A-Z a-z 0-9 _ - . :`); default `"main"`. */
  name?: string;
  /** The awareness to carry as this tab's live cursor (one is made for the document by default). */
  awareness?: Awareness;
  /** Local updates made within this many milliseconds are published as one event; default 50. */
  flushMs?: number;
}

/**
 * Binds a `Y.Doc` to a document of a joined room: local updates are published as the room's
 * `yjs` events (through the outbox: offline edits survive a reload), the room's are applied,
 * and awareness travels as live cursors.
 */
export class ChorusProvider {
  constructor(room: Room<any, any>, doc: Y.Doc, options?: ChorusProviderOptions);
  readonly doc: Y.Doc;
  readonly name: string;
  readonly awareness: Awareness;
  flushMs: number;
  /** Whether the document has been read from the server since the provider started. */
  readonly synced: boolean;
  whenSynced(): Promise<void>;
  on(kind: "synced", listener: (synced: true) => void): () => void;
  on(kind: "error", listener: (error: ChorusError) => void): () => void;
  /** Publishes the local updates waiting for `flushMs` now. */
  flush(): void;
  /** Publishes what waits, clears this tab's awareness (destroying the one it made itself) and stops following the room. */
  destroy(): void;
}
