// `@chorus/client/store`: one room as an external store — `subscribe(listener)` and
// `getSnapshot()` — for UI frameworks (React's `useSyncExternalStore`, Svelte's store contract,
// Vue through a `shallowRef`). Its own entry point, so pages that do not use it do not load it:
// it imports nothing and works only through the public `Room` and `ChorusClient` API.

const freeze = Object.freeze;

// A stored event goes in seq order before the entries without a seq (pending and failed
// publishes, which stay last). Returns `feed` itself when the event is already there.
function place(feed, entry) {
  if (feed.some((e) => e.seq === entry.seq)) return feed;
  const next = [...feed];
  let at = next.length;
  while (at > 0 && (next[at - 1].seq === undefined || next[at - 1].seq > entry.seq)) at--;
  next.splice(at, 0, freeze(entry));
  return next;
}

/**
 * A store over `room` (from `client.join`). Options: `history` — how many of the newest stored
 * events to load into the feed when the store is made, when the room is (re)joined while they
 * are not loaded yet, and after a `reset` (default 50; 0 loads none).
 */
export function roomStore(room, { history = 50 } = {}) {
  const client = room.client;
  const listeners = new Set();
  let presence = [];
  try {
    presence = room.presence();
  } catch {
    // Not joined (left, or the client is closed): nobody is present.
  }
  let snapshot = freeze({
    feed: freeze([]),
    presence: freeze([...presence]),
    typing: freeze([]),
    connection: freeze({ ...client.state }),
  });
  // `loaded`: the newest events are in the feed; `generation` drops pages asked for before a reset.
  let loaded = false;
  let loading = false;
  let generation = 0;
  let listening = true;

  const set = (changes) => {
    snapshot = freeze({ ...snapshot, ...changes });
    for (const listener of [...listeners]) {
      try {
        listener(snapshot);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  };
  const setFeed = (feed) => {
    if (feed !== snapshot.feed) set({ feed: freeze(feed) });
  };
  // Marks an own publish failed (refused, or not acknowledged within the outbox's 24 h).
  const fail = (id, code, message) =>
    setFeed(snapshot.feed.map((e) => (e.id === id && e.status === "pending" ? freeze({ ...e, status: "failed", code, message }) : e)));

  const load = async () => {
    if (!history || loading || loaded) return;
    loading = true;
    const asked = generation;
    try {
      const page = await room.history({ limit: history });
      if (asked !== generation || !listening) return;
      loaded = true;
      let feed = snapshot.feed;
      for (const event of page.events) feed = place(feed, { ...event, own: false, status: "stored" });
      setFeed(feed);
    } catch {
      // Offline or refused: tried again on the next `joined`.
    } finally {
      loading = false;
      // A reset while the page was on its way: the page was of the old history; load the new.
      if (asked !== generation && listening) load();
    }
  };

  const stops = [
    // A frozen copy: the client's own payload object also goes to its other listeners.
    client.on("state", (connection) => set({ connection: freeze({ ...connection }) })),
    room.on("joined", load),
    room.on("pending", ({ room: name, id, body }) =>
      setFeed([...snapshot.feed, freeze({ room: name, id, body, own: true, status: "pending" })]),
    ),
    room.on("event", (event) => {
      // Ephemeral events (no seq: cursors, progress) are not part of the feed.
      if (event.seq === undefined) return;
      let feed = snapshot.feed;
      if (event.own) feed = feed.filter((e) => e.seq !== undefined || e.id !== event.id);
      setFeed(place(feed, { ...event, status: "stored" }));
    }),
    room.on("publishFailed", ({ id, code, message }) => fail(id, code, message)),
    room.on("expired", ({ id }) => fail(id, "expired", "the publish was not acknowledged in time")),
    room.on("presence", ({ users }) => set({ presence: freeze([...users]) })),
    room.on("typing", ({ users }) => set({ typing: freeze([...users]) })),
    room.on("reset", () => {
      // The stored events cannot be resumed: drop them (own publishes not yet stored stay) and
      // load the newest again.
      generation++;
      loaded = false;
      setFeed(snapshot.feed.filter((e) => e.seq === undefined));
      load();
    }),
  ];
  load();

  return {
    room,
    /** Calls `listener(snapshot)` now and after every change; returns an unsubscribe function. */
    subscribe(listener) {
      listeners.add(listener);
      listener(snapshot);
      return () => {
        listeners.delete(listener);
      };
    },
    /** The current snapshot: frozen, and the same object until something changes. */
    getSnapshot() {
      return snapshot;
    },
    /** Stops following the room (the room stays joined; `room.leave()` leaves it). */
    close() {
      listening = false;
      for (const stop of stops) stop();
      listeners.clear();
    },
  };
}
