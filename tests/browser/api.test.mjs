// The npm package's JS API in a real browser (Debian chromium) against the real server: per-room
// listeners, history pages, token renewal without reconnecting, a failing getToken, close(),
// values that cannot become JSON, a client started while the browser is offline, and a browser
// without crypto.getRandomValues.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mint, serverAndBrowser } from "./harness.mjs";

let browser;
let base;
serverAndBrowser({}, (env) => ({ browser, base } = env));

/** A fresh page on the server's origin (the demo, not started), with `mint` exposed to it. */
async function openPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (error) => console.error(`[page] ${error}`));
  await page.exposeFunction("mint", mint);
  await page.goto(`${base}/demo/`);
  // Loaded now, so tests that go offline can still start a client.
  await page.evaluate(async () => (await import("/pkg/chorus.js")).load());
  return { context, page };
}

test("room.on gets only its room's events, in the same flat shape as client.on, until unsubscribed or left", async () => {
  const { context, page } = await openPage();
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const client = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600) });
    const a = client.join("t:rooms-a");
    const b = client.join("t:rooms-b");
    const seen = { client: [], a: [], b: [], aPending: [], aAfterStop: [] };
    client.on("event", (e) => seen.client.push(e));
    a.on("pending", (p) => seen.aPending.push(p));
    const stop = a.on("event", (e) => seen.a.push(e));
    a.on("event", (e) => seen.aAfterStop.push(e.body.n));
    b.on("event", (e) => seen.b.push(e.body.n));
    await a.publish({ n: 1 });
    await b.publish({ n: 2 });
    stop();
    await a.publish({ n: 3 });
    const leftRoom = [];
    b.on("event", (e) => leftRoom.push(e));
    b.leave();
    const afterLeave = await b.publish({ n: 4 }).then(() => "no error", (e) => `${e.name} ${e.code}`);
    await a.publish({ n: 5 });
    client.close();
    return { seen, afterLeave, leftRoom };
  });
  const [first] = result.seen.a;
  assert.equal(result.seen.a.length, 1, "unsubscribed after the first event");
  assert.deepEqual(Object.keys(first).sort(), ["at", "body", "from", "id", "own", "room", "seq"]);
  assert.equal(first.room, "t:rooms-a");
  assert.equal(first.seq, 1);
  assert.equal(first.own, true);
  assert.deepEqual(first.body, { n: 1 });
  assert.deepEqual(result.seen.client[0], first, "client.on gets the same payload");
  assert.deepEqual(result.seen.aPending.map((p) => [p.room, p.body.n]), [["t:rooms-a", 1], ["t:rooms-a", 3], ["t:rooms-a", 5]]);
  assert.deepEqual(result.seen.aAfterStop, [1, 3, 5]);
  assert.deepEqual(result.seen.b, [2], "room b never sees room a's events");
  assert.equal(result.afterLeave, "ChorusError not_joined");
  assert.deepEqual(result.leftRoom, []);
  assert.deepEqual(result.seen.client.map((e) => e.body.n), [1, 2, 3, 5]);
  await context.close();
});

test("a stream step reaches client.on and room.on in the same flat shape", async () => {
  const { context, page } = await openPage();
  const seen = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const options = { url: location.origin, shareConnection: false };
    const ana = await ChorusClient.connect({ ...options, token: await window.mint("ana", 3600), storagePrefix: "t:flat-a:" });
    const ben = await ChorusClient.connect({ ...options, token: await window.mint("ben", 3600), storagePrefix: "t:flat-b:" });
    const seen = { client: [], room: [] };
    const watched = ben.join("t:flat-stream");
    const finished = new Promise((resolve) => watched.on("stream", (step) => step.op === "finish" && resolve()));
    ben.on("stream", (step) => seen.client.push(step));
    watched.on("stream", (step) => seen.room.push(step));
    await new Promise((resolve) => watched.on("joined", resolve));
    const room = ana.join("t:flat-stream");
    await new Promise((resolve) => room.on("joined", resolve));
    const answer = room.startStream({ id: "s-flat" });
    answer.append("x");
    await answer.finish();
    await finished;
    ana.close();
    ben.close();
    return seen;
  });
  assert.deepEqual(seen.client, seen.room);
  assert.deepEqual(seen.client.map((step) => [step.room, step.id, step.from, step.op]).at(-1), ["t:flat-stream", "s-flat", "ana", "finish"]);
  assert.ok(seen.client.every((step) => step.stream === undefined), JSON.stringify(seen.client));
  await context.close();
});

test("room.history pages backwards and forwards, and historyPages walks to the oldest event", async () => {
  const { context, page } = await openPage();
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const client = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600) });
    const room = client.join("t:history");
    for (let n = 1; n <= 7; n++) await room.publish({ n });
    const seqs = (page) => page.events.map((e) => e.seq);
    const newest = await room.history({ limit: 3 });
    const older = await room.history({ before: newest.older, limit: 3 });
    const forward = await room.history({ after: 2, limit: 2 });
    const walked = [];
    for await (const page of room.historyPages({ limit: 3 })) walked.push(seqs(page));
    const empty = await client.join("t:history-empty").history();
    client.close();
    return {
      newest: [seqs(newest), newest.older, newest.newer, newest.head],
      older: [seqs(older), older.older],
      forward: [seqs(forward), forward.newer, forward.events[0].body],
      walked,
      empty: [empty.events.length, empty.older, empty.newer],
    };
  });
  assert.deepEqual(result.newest, [[5, 6, 7], 5, null, 7]);
  assert.deepEqual(result.older, [[2, 3, 4], 2]);
  assert.deepEqual(result.forward, [[3, 4], 4, { n: 3 }]);
  assert.deepEqual(result.walked, [[5, 6, 7], [2, 3, 4], [1]]);
  assert.deepEqual(result.empty, [0, null, null]);
  await context.close();
});

test("a token about to expire is renewed through getToken on the same WebSocket", async () => {
  const { context, page } = await openPage();
  const sockets = [];
  const sent = [];
  const received = [];
  page.on("websocket", (socket) => {
    sockets.push(socket);
    // The page's one socket is shared (multiplexed): a frame comes after its tab id and ":".
    const frame = ({ payload }) => String(payload).replace(/^[\w.]+:/, "");
    socket.on("framesent", (message) => sent.push(frame(message)));
    socket.on("framereceived", (message) => received.push(frame(message)));
  });
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    let asked = 0;
    // The first token lives 6 s; the client renews it before then, and the socket outlives it.
    const client = await ChorusClient.connect({
      url: location.origin,
      token: await window.mint("ana", 6),
      getToken: () => {
        asked += 1;
        return window.mint("ana", 3600);
      },
    });
    const states = [];
    client.on("state", (s) => states.push(s.state));
    client.on("tokenNeeded", () => states.push("tokenNeeded"));
    client.on("error", (e) => states.push(`error ${e.code}`));
    const room = client.join("t:renew");
    await room.publish({ n: 1 });
    await new Promise((resolve) => setTimeout(resolve, 9000));
    const acked = await room.publish({ n: 2 });
    const state = client.state.state;
    const before = [...states];
    client.close();
    return { asked, states: before, seq: acked.seq, state };
  });
  assert.equal(result.asked, 1, JSON.stringify({ result, sockets: sockets.length, sent }));
  assert.equal(sockets.length, 1, "no second WebSocket");
  assert.deepEqual(result.states.filter((s) => s !== "connected"), [], "never disconnected");
  assert.equal(result.state, "connected");
  assert.equal(result.seq, 2);
  assert.equal(sent.filter((frame) => frame.includes('"type":"auth"')).length, 1);
  assert.equal(received.filter((frame) => frame.startsWith('{"type":"authed"')).length, 1);
  await context.close();
});

test("a history request whose getToken answers another user's token rejects with the server's 401 code", async () => {
  const { context, page } = await openPage();
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const client = await ChorusClient.connect({
      url: location.origin,
      token: await window.mint("ana", 2),
      getToken: () => window.mint("eve", 3600),
      storagePrefix: "t:other-user:",
    });
    const room = client.join("t:other-user");
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const outcome = await room.history().then(() => "answered", (error) => `${error.name} ${error.code}`);
    client.close();
    return outcome;
  });
  assert.equal(result, "ChorusError token_expired");
  await context.close();
});

test("a getToken that rejects is retried with the backoff until it gives a token", async () => {
  const { context, page } = await openPage();
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    let asked = 0;
    const client = await ChorusClient.connect({
      url: location.origin,
      getToken: async () => {
        asked += 1;
        if (asked <= 2) throw new Error("the backend is down");
        return window.mint("ana", 3600);
      },
    });
    const states = [];
    client.on("state", (s) => states.push(s.state));
    await new Promise((resolve) => client.on("state", (s) => s.state === "connected" && resolve()));
    client.close();
    return { asked, states };
  });
  assert.equal(result.asked, 3);
  assert.ok(result.states.includes("reconnecting"), result.states.join());
  await context.close();
});

test("a client started offline with a rejecting getToken shows the restored outbox and sends it once online", async () => {
  const { context, page } = await openPage();
  let sockets = 0;
  let polls = 0;
  page.on("websocket", () => (sockets += 1));
  page.on("request", (request) => request.url().includes("/v1/poll") && (polls += 1));
  await context.setOffline(true);
  const restored = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    // Before the "reload": two publishes wait in the outbox (in localStorage).
    const before = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600), storagePrefix: "t:reload:" });
    const room = before.join("t:reload");
    const waiting = [room.publish({ n: 1 }), room.publish({ n: 2 })].map((p) => p.catch((e) => e.code));
    before.close();
    const settled = await Promise.all(waiting);
    // After the "reload", with the README's getToken (a fetch that fails while offline).
    const getToken = async () => {
      const response = await fetch("/v1/dev/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "ana" }) });
      return (await response.json()).token;
    };
    const client = await ChorusClient.connect({ url: location.origin, getToken, storagePrefix: "t:reload:" });
    window.client = client;
    const again = client.join("t:reload");
    window.pending = [];
    window.confirmed = [];
    again.on("pending", (p) => window.pending.push(p.body.n));
    again.on("event", (e) => e.own && window.confirmed.push(e.body.n));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    return { settled, pending: window.pending, state: client.state.state, queued: client.queued };
  });
  assert.deepEqual(restored.settled, ["closed", "closed"]);
  assert.deepEqual(restored.pending, [1, 2]);
  assert.equal(restored.state, "offline");
  assert.equal(restored.queued, 2);
  assert.equal(sockets, 0, "no WebSocket attempt while offline");
  assert.equal(polls, 0, "no polling attempt while offline");
  await context.setOffline(false);
  await page.waitForFunction(() => window.confirmed.length === 2, null, { timeout: 15000 });
  const after = await page.evaluate(async () => {
    const page = await window.client.join("t:reload").history();
    const out = { confirmed: window.confirmed, queued: window.client.queued, stored: page.events.map((e) => e.body.n) };
    window.client.close();
    return out;
  });
  assert.deepEqual(after, { confirmed: [1, 2], queued: 0, stored: [1, 2] });
  await context.close();
});

test("close() rejects every publish still waiting with ChorusError closed", async () => {
  const { context, page } = await openPage();
  await context.setOffline(true);
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const client = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600), storagePrefix: "t:close:" });
    const room = client.join("t:close");
    const waiting = [room.publish({ n: 1 }), room.publish({ n: 2 })];
    const history = await room.history().then(() => "resolved", (e) => `${e.name} ${e.code}`);
    client.close();
    return [history, ...(await Promise.all(waiting.map((p) => p.then(() => "resolved", (e) => `${e.name} ${e.code}`))))];
  });
  // (A history request with no network rejects with `offline`.)
  assert.deepEqual(result, ["ChorusError offline", "ChorusError closed", "ChorusError closed"]);
  await context.close();
});

test("values that cannot become JSON are refused with ChorusError invalid_json", async () => {
  const { context, page } = await openPage();
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const client = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600), storagePrefix: "t:json:" });
    const cycle = {};
    cycle.self = cycle;
    const bad = { cycle, bigint: 10n, function: () => 1, undefined: undefined, symbol: Symbol("s") };
    const caught = (f) => {
      try {
        f();
        return "no error";
      } catch (error) {
        return `${error.name} ${error.code}`;
      }
    };
    const room = client.join("t:json");
    const out = {};
    for (const [name, value] of Object.entries(bad)) {
      out[name] = [
        await room.publish(value).then(() => "no error", (error) => `${error.name} ${error.code}`),
        caught(() => client.join("t:json-meta", { meta: value })),
        caught(() => room.setPresence(value)),
        caught(() => room.publishEphemeral(value)),
      ];
    }
    out.queued = client.queued;
    client.close();
    return out;
  });
  const refused = Array(4).fill("ChorusError invalid_json");
  for (const name of ["cycle", "bigint", "function", "symbol"]) assert.deepEqual(result[name], refused, name);
  // `meta: undefined` is no meta (null), as documented; everywhere else undefined is refused.
  assert.deepEqual(result.undefined, [refused[0], "no error", refused[0], refused[0]]);
  assert.equal(result.queued, 0);
  await context.close();
});

test("a client started while the browser is offline makes no attempt until it is back online", async () => {
  const { context, page } = await openPage();
  let sockets = 0;
  let requests = 0;
  page.on("websocket", () => (sockets += 1));
  page.on("request", (request) => request.url().includes("/v1/") && (requests += 1));
  await context.setOffline(true);
  const offline = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const client = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600), storagePrefix: "t:offline-load:" });
    window.client = client;
    client.join("t:offline-load");
    const states = [];
    client.on("state", (s) => states.push(s.state));
    await new Promise((resolve) => setTimeout(resolve, 5000));
    return { states, state: client.state.state, badge: client.state.badge };
  });
  assert.deepEqual(offline, { states: ["offline"], state: "offline", badge: "offline" });
  assert.equal(sockets, 0);
  assert.equal(requests, 0);
  await context.setOffline(false);
  await page.waitForFunction(() => window.client.state.badge === "live", null, { timeout: 15000 });
  assert.equal(sockets, 1);
  await page.evaluate(() => window.client.close());
  await context.close();
});

test("a stream chunk refused offline takes no index: the producer goes on after reconnecting and the result has every chunk sent", async () => {
  const { context, page } = await openPage();
  await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    window.client = await ChorusClient.connect({ url: location.origin, token: await window.mint("ana", 3600), storagePrefix: "t:stream-offline:" });
    window.room = window.client.join("t:stream-offline");
  });
  await page.waitForFunction(() => window.client.state.badge === "live", null, { timeout: 15000 });
  await page.evaluate(() => {
    window.answer = window.room.startStream({ id: "s-offline" });
    window.answer.append("a");
  });
  await context.setOffline(true);
  await page.waitForFunction(() => window.client.state.state === "offline", null, { timeout: 15000 });
  const refused = await page.evaluate(() => {
    try {
      window.answer.append("b");
      return "sent";
    } catch (error) {
      return `${error.name} ${error.code}`;
    }
  });
  assert.equal(refused, "ChorusError offline");
  await context.setOffline(false);
  await page.waitForFunction(() => window.client.state.badge === "live", null, { timeout: 15000 });
  const result = await page.evaluate(async () => {
    window.answer.append("c");
    const { seq } = await window.answer.finish();
    const page = await window.room.history();
    window.client.close();
    return { seq, bodies: page.events.map((e) => e.body) };
  });
  assert.equal(result.seq, 1);
  assert.deepEqual(result.bodies.map((b) => [b.stream, b.text]), [["text", "ac"]]);
  await context.close();
});

test("connect rejects with ChorusError no_randomness when the browser has no crypto.getRandomValues", async () => {
  const { context, page } = await openPage();
  const result = await page.evaluate(async () => {
    const { ChorusClient } = await import("/pkg/chorus.js");
    const token = await window.mint("ana", 3600);
    const original = crypto.getRandomValues;
    crypto.getRandomValues = () => {
      throw new Error("no randomness here");
    };
    const refused = await ChorusClient.connect({ url: location.origin, token }).then(
      () => "connected",
      (error) => `${error.name} ${error.code}`,
    );
    crypto.getRandomValues = original;
    // With it back, a client starts, and a listener that throws stops neither the others nor the client.
    const client = await ChorusClient.connect({ url: location.origin, token });
    const room = client.join("t:randomness");
    const seen = [];
    const thrown = [];
    addEventListener("error", (event) => {
      thrown.push(event.message);
      event.preventDefault();
    });
    room.on("event", () => {
      throw new Error("a listener's bug");
    });
    room.on("event", (event) => seen.push(event.body.n));
    await room.publish({ n: 1 });
    await room.publish({ n: 2 });
    await new Promise((wake) => setTimeout(wake, 0));
    client.close();
    return { refused, seen, thrown: thrown.length };
  });
  assert.equal(result.refused, "ChorusError no_randomness");
  assert.deepEqual(result.seen, [1, 2]);
  assert.equal(result.thrown, 2, "each listener exception is rethrown apart");
  await context.close();
});
