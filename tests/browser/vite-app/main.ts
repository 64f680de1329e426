// A TypeScript app bundled by Vite that imports the npm package the way users do. `tsc` checks
// it against chorus.d.ts (including the `@ts-expect-error` lines: the typings must reject
// them); the browser test loads Vite's build and expects a confirmed publish.
import { ChorusClient, ChorusError, type ClientOptions, type ConnectionState } from "@chorus/client";
import { roomStore, type FeedEntry, type RoomSnapshot } from "@chorus/client/store";
import type { UseRoomResult, useRoom } from "@chorus/client/react";
import type { LockGrant } from "@chorus/client/locks";

const out = document.getElementById("out") as HTMLPreElement;
const log = (line: string): void => {
  out.textContent += `${line}\n`;
};

// @ts-expect-error: "pigeon" is not a transport.
const wrongTransport: ClientOptions = { url: "", transport: "pigeon" };
void wrongTransport;

async function main(): Promise<void> {
  const response = await fetch("/v1/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Vita" }),
  });
  const { token } = (await response.json()) as { token: string };
  const client = await ChorusClient.connect({ url: location.origin, token, transport: "auto" });
  client.on("state", (state: ConnectionState) => {
    document.body.dataset.badge = state.badge;
  });
  const stop = client.on("event", ({ seq, own }) => log(`event seq=${seq ?? "-"} own=${own}`));
  // @ts-expect-error: there is no "message" event.
  client.on("message", () => {});
  // @ts-expect-error: presence payloads have no `count`.
  client.on("presence", ({ count }) => count);
  const room = client.join<{ text: string }, { status: string }>("vite:1", { meta: { status: "active" } });
  room.on("event", (event) => {
    // A received body is typed as the room's Body; a stored event's seq is a number.
    const text: string = event.body.text;
    if (event.seq !== undefined) {
      const seq: number = event.seq;
      void seq;
    }
    void text;
  });
  // Backend notices, and the activity feed's filters.
  client.on("notice", ({ id, level, at }) => {
    const shown: "info" | "warning" | "critical" = level;
    void [id, shown, at];
  });
  // A stream step is one flat shape on the client and on its room; with the locks entry's
  // typings, rooms have `lock` events.
  client.on("stream", ({ room: name, id, op }) => void [name, id, op]);
  room.on("lock", ({ locks }) => {
    const grant: LockGrant | undefined = locks[0];
    void grant?.token;
  });
  const feed = (): Promise<unknown> => room.history({ type: "comment", user: "vita", before: 10, limit: 5 });
  void feed;
  // Never called: misuse the typings must reject.
  const misuse = (): void => {
    // @ts-expect-error: notices are client-wide, not a room's.
    room.on("notice", () => {});
    // @ts-expect-error: the type filter is a string.
    void room.history({ type: 7 });
    // @ts-expect-error: the room's bodies are { text: string }.
    void room.publish({ title: 1 });
    // @ts-expect-error: presence meta is { status: string }.
    room.setPresence({ status: 1 });
    // @ts-expect-error: rooms have no "welcome" event (it is client-wide).
    room.on("welcome", () => {});
  };
  void misuse;
  const meta: string | undefined = room.presence()[0]?.conns[0]?.meta.status;
  void meta;
  // The store and the React hook carry the room's types.
  const store = roomStore(room, { history: 0 });
  const snapshot: RoomSnapshot<{ text: string }, { status: string }> = store.getSnapshot();
  const entry: FeedEntry<{ text: string }> | undefined = snapshot.feed[0];
  const entryText: string | undefined = entry?.body.text;
  const stopStore: () => void = store.subscribe((s) => void s.typing.length);
  stopStore();
  store.close();
  const typedHook = (use: typeof useRoom): UseRoomResult<{ text: string }> => use<{ text: string }>(client, "vite:1", { history: 10 });
  void typedHook;
  void entryText;
  // Never called: misuse the typings must reject.
  const storeMisuse = (): void => {
    // @ts-expect-error: snapshots are read-only.
    snapshot.feed.push(snapshot.feed[0]!);
    // @ts-expect-error: the feed's bodies are { text: string }.
    const wrong: number = snapshot.feed[0]!.body.text;
    void wrong;
  };
  void storeMisuse;
  const page = await room.history({ limit: 10 });
  const first: number | undefined = page.events[0]?.seq;
  void first;
  const code: import("@chorus/client").ErrorCode = "forbidden";
  // @ts-expect-error: not a documented error code.
  const wrongCode: import("@chorus/client").ErrorCode = "nope";
  void code;
  void wrongCode;
  const { id, seq }: { id: string; seq: number } = await room.publish({ text: "from vite" });
  log(`published id=${id.length > 0} seq=${seq}`);
  stop();
  try {
    client.join("not a room name");
  } catch (error) {
    log(`bad room refused: ${error instanceof Error}`);
  }
  void ChorusError;
}

main().catch((error: unknown) => log(`error ${String(error)}`));
