// A tiny React app on `@chorus/client/react`, bundled by esbuild in react.test.mjs: one room's
// feed, presence and typing through `useRoom`, a box to publish. StrictMode on purpose: its
// unmount-and-mount of every effect must keep the room joined.
import { ChorusClient } from "@chorus/client";
import { useRoom } from "@chorus/client/react";
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

const params = new URLSearchParams(location.search);
const name = params.get("name") ?? "Ada";

async function token() {
  const response = await fetch("/v1/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`no token (HTTP ${response.status})`);
  return (await response.json()).token;
}

function Room({ client, roomName }) {
  const { room, feed, presence, typing, connection } = useRoom(client, roomName, { meta: { name } });
  const [text, setText] = useState("");
  const send = (event) => {
    event.preventDefault();
    room.publish({ text });
    setText("");
  };
  return (
    <main data-badge={connection.badge}>
      <ul id="presence">{presence.map((u) => <li key={u.user}>{u.name ?? u.user}</li>)}</ul>
      <p id="typing">{typing.length ? `${typing.length} typing` : ""}</p>
      <ul id="feed">
        {feed.map((e) => (
          <li key={e.id} data-status={e.status}>
            {e.body.text}
          </li>
        ))}
      </ul>
      <form onSubmit={send}>
        <input
          id="text"
          value={text}
          onChange={(event) => {
            setText(event.target.value);
            room?.typing(event.target.value !== "");
          }}
        />
        <button id="send" disabled={!room}>Send</button>
      </form>
    </main>
  );
}

function App() {
  const [client, setClient] = useState(null);
  useEffect(() => {
    // StrictMode mounts this twice: the first client is closed and never rendered.
    let unmounted = false;
    let made;
    ChorusClient.connect({ url: location.origin, getToken: token }).then((c) => {
      if (unmounted) return c.close();
      made = c;
      setClient(c);
    });
    return () => {
      unmounted = true;
      made?.close();
    };
  }, []);
  const [shown, setShown] = useState(true);
  // Hiding the room unmounts its only `useRoom`: the room is left (and joined again when shown).
  return (
    <>
      <button id="toggle" onClick={() => setShown(!shown)}>
        {shown ? "Hide room" : "Show room"}
      </button>
      {shown && <Room client={client} roomName={params.get("room") ?? "react:1"} />}
    </>
  );
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
