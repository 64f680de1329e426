// `@chorus/client/react`: the `useRoom` hook. Its own entry point with React as an optional peer
// dependency, so apps that do not use React never load it; it builds on `./store.js`.
import { useEffect, useMemo, useSyncExternalStore } from "react";
import { roomStore } from "./store.js";

// What `useRoom` gives while there is no client (still connecting) or no room name.
const idle = Object.freeze({
  room: null,
  feed: Object.freeze([]),
  presence: Object.freeze([]),
  typing: Object.freeze([]),
  connection: Object.freeze({ state: "connecting", badge: "syncing" }),
});
const idleStore = { subscribe: () => () => {}, getSnapshot: () => idle };

// One store per client and room name, shared by every component that uses the room, with the
// number of mounted components using it. Left (and its store closed) a task after the last one
// unmounts, so React's StrictMode unmount-and-mount keeps it.
const shared = new WeakMap();

function use(client, name, options) {
  let rooms = shared.get(client);
  if (!rooms) shared.set(client, (rooms = new Map()));
  let entry = rooms.get(name);
  if (!entry) {
    entry = { store: roomStore(client.join(name, { meta: options.meta }), options), users: 0, timer: 0 };
    rooms.set(name, entry);
  }
  return entry;
}

/**
 * Joins `name` on `client` (null while connecting) and returns `{ room, feed, presence, typing,
 * connection }`, re-rendering on every change. Options (used when the room is joined): `meta`,
 * this tab's presence meta; `history`, how many stored events to load (default 50).
 */
export function useRoom(client, name, options = {}) {
  const entry = client && name ? use(client, name, options) : null;
  useEffect(() => {
    if (!entry) return;
    entry.users++;
    clearTimeout(entry.timer);
    return () => {
      if (--entry.users > 0) return;
      entry.timer = setTimeout(() => {
        if (entry.users > 0) return;
        shared.get(client)?.delete(name);
        entry.store.close();
        entry.store.room.leave();
      }, 0);
    };
  }, [entry, client, name]);
  const store = entry?.store ?? idleStore;
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot);
  return useMemo(() => (entry ? freezeWithRoom(snapshot, entry.store.room) : snapshot), [snapshot, entry]);
}

function freezeWithRoom(snapshot, room) {
  return Object.freeze({ room, ...snapshot });
}
