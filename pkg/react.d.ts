// Typings for `@chorus/client/react` (src/react.js).
import type { ChorusClient, Room } from "./chorus.js";
import type { RoomSnapshot } from "./store.js";

export type { FeedEntry, RoomSnapshot } from "./store.js";

export interface UseRoomOptions<Meta = unknown> {
  /** This tab's presence meta, used when the hook joins the room (later: `room.setPresence`). */
  meta?: Meta;
  /** How many of the newest stored events to load into the feed (default 50; 0: none). */
  history?: number;
}

/** The room's snapshot and the `Room` itself (`null` while there is no client or no name). */
export interface UseRoomResult<Body = unknown, Meta = unknown> extends RoomSnapshot<Body, Meta> {
  readonly room: Room<Body, Meta> | null;
}

export function useRoom<Body = unknown, Meta = unknown>(
  client: ChorusClient | null | undefined,
  name: string | null | undefined,
  options?: UseRoomOptions<Meta>,
): UseRoomResult<Body, Meta>;
