// The browser I/O of one Chorus client: WebSockets, fetch, one timer, localStorage, randomness,
// and the page's network, visibility and back/forward-cache events. The Rust driver
// (sdk/src/web/mod.rs) decides everything; this class only carries it out and reports what
// happened through one callback, `report(kind, id, number, text)`, never from inside one of its
// own methods. It is JavaScript because every web-sys binding and every Rust closure type costs
// wasm size, and the SDK has a size budget (docs/SIZE.md).

// Report kinds; `report` in sdk/src/js_abi.rs has the same numbers (a test checks).
const TIMER = 0; // the timer fired
const OPEN = 1; // socket `id` opened
const MESSAGE = 2; // socket `id` received `text`
const CLOSED = 3; // socket `id` closed with code `number`
const HTTP = 4; // request `id` answered with status `number` and body `text` (status 0: failed)
const NETWORK = 5; // the network went online (`number` 1) or offline (0)
const VISIBLE = 6; // the page became visible (1) or hidden (0)

// One connection per browser for all tabs (ARCHITECTURE.md, "Tabs sharing one connection").
// The pages of one origin that use one server elect a leader with the Web Locks API (a lock
// held until the page goes: the browser frees it when the page closes or crashes, and the next
// page waiting gets it at once). The leader carries every tab's logical connection over ONE
// multiplexed socket (subprotocol `chorus.v1.mux`, docs/PROTOCOL.md); the other pages talk to
// it over a BroadcastChannel. Each client still has its own core, token, rooms, presence and
// outbox: only the socket is shared. A client sees a virtual socket (`send`, `close`,
// `onopen`, `onmessage`, `onclose`): it opens on the first frame (`welcome`) of its logical
// connection, and closes when that connection does. When another page takes the lead, every
// virtual socket that went through the old one closes (the old socket died with its page)
// and its client reconnects at once through the new leader, resuming from its cursors and
// resending its outbox; one still waiting for its `welcome` is opened again instead.
// Polling shares too: the pages that poll a server elect a leader the same way (a `Share` for
// the poll URL), which holds every tab's long poll in one request (`POST /v1/polls`): one
// held request per browser rather than one per tab (a browser allows about six connections to
// a server). A poll the request does not answer is asked again in the next one; a poll that
// went through a leader that is gone is asked again through the new one.
// Messages: to the leader ["o", tab, token] open, ["s", tab, text] send, ["c", tab] close,
// ["g", tab, query, token, time asked] a long poll; from it ["m", tab, text] a frame,
// ["x", tab, code] closed (a poll: ["x", tab, status, body] answered), ["l", id] "I lead";
// ["w"] who leads?
const shares = new Map();
const share = (url) => shares.get(url) ?? shares.set(url, new Share(url)).get(url);

class Share {
  constructor(url) {
    this.url = url;
    this.me = Math.random().toString(36).slice(2);
    this.tabs = new Map();
    this.polls = new Map();
    this.held = [];
    this.n = 0;
    const channel = (this.channel = new BroadcastChannel(`chorus ${url}`));
    channel.onmessage = ({ data }) => this.heard(data);
    // A follower page going away closes its logical connections (a crash leaves them to the
    // server's idle timeout).
    addEventListener("pagehide", (event) => event.persisted || this.tabs.forEach((_, tab) => this.up(["c", tab])));
    navigator.locks.request(`chorus ${url}`, () => {
      this.routes = new Set();
      this.queue = [];
      this.channel.postMessage(["l", this.me]);
      this.lead(this.me);
      return new Promise(() => {});
    });
    channel.postMessage(["w"]);
  }

  /** A virtual socket for a client of this page, authenticated by `token`. */
  socket(token) {
    const tab = `${this.me}_${++this.n}`;
    const socket = {
      hello: ["o", tab, token],
      send: (text) => this.up(["s", tab, text]),
      close: () => this.tabs.delete(tab) && this.up(["c", tab]),
    };
    this.tabs.set(tab, socket);
    this.up(socket.hello);
    return socket;
  }

  /** A long poll (`GET` with `query`) through the leader; `done(status, text)` gets its answer. */
  poll(query, token, done) {
    const tab = `${this.me}_${++this.n}`;
    const poll = { hello: ["g", tab, query, token, Date.now()], onclose: (answer) => done(answer.code, answer.text) };
    this.tabs.set(tab, poll);
    this.up(poll.hello);
  }

  // A message of this page's tabs to the leader: carried here, posted, or held until one is known.
  up(message) {
    if (this.leader === undefined) return this.held.push(message);
    if (message == this.tabs.get(message[1])?.hello) this.tabs.get(message[1]).live = true;
    this.leader == this.me ? this.carry(message) : this.channel.postMessage(message);
  }

  heard(message) {
    const [kind, tab] = message;
    if (kind == "w") this.leader == this.me && this.channel.postMessage(["l", this.me]);
    else if (kind == "l") tab != this.leader && this.lead(tab);
    else if (kind == "m" || kind == "x") this.tabs.has(tab) && this.down(message);
    else if (this.leader == this.me) this.carry(message);
  }

  // Page `id` leads now: what went through the previous leader is gone.
  lead(id) {
    const held = this.held;
    this.leader = id;
    this.held = [];
    for (const [tab, socket] of this.tabs) {
      if (!socket.live) continue;
      socket.live = false;
      if (socket.opened) this.down(["x", tab, 1001]);
      else held.unshift(socket.hello);
    }
    for (const message of held) this.tabs.has(message[1]) && this.up(message);
  }

  // A message from the leader to one of this page's tabs.
  down([kind, tab, arg, text]) {
    const socket = this.tabs.get(tab);
    if (kind == "x") {
      this.tabs.delete(tab);
      socket.onclose?.({ code: arg, again: arg == 1001, text });
    } else {
      socket.opened || ((socket.opened = true), socket.onopen?.());
      socket.onmessage?.({ data: arg });
    }
  }

  // Leader: one tab's message onto the multiplexed socket.
  carry([kind, tab, arg, token, at]) {
    this.polls.delete(tab);
    if (kind == "g") return this.polls.set(tab, { id: tab, token, query: arg, at }) && this.gather();
    if (kind == "o") this.routes.add(tab);
    else if (!this.routes.has(tab)) return;
    if (kind == "c") this.routes.delete(tab);
    const text = tab + (kind == "o" ? "+" + arg : kind == "s" ? ":" + arg : "-");
    if (!this.ws) {
      let ws;
      try {
        ws = this.ws = new WebSocket(this.url, "chorus.v1.mux");
      } catch {
        return setTimeout(() => this.lost(1006));
      }
      ws.onopen = () => this.queue.splice(0).forEach((text) => ws.send(text));
      ws.onmessage = ({ data }) => {
        const at = data.search(/[^\w.]/);
        const tab = data.slice(0, at);
        const message = data[at] == ":" ? ["m", tab, data.slice(at + 1)] : ["x", tab, +data.slice(at + 1)];
        if (message[0] == "x") this.routes.delete(tab);
        if (tab) this.route(message);
      };
      ws.onclose = (event) => this.ws == ws && this.lost(event.code);
    }
    this.ws.readyState == 1 ? this.ws.send(text) : this.queue.push(text);
  }

  // Leader: the multiplexed socket is gone, and every logical connection on it.
  lost(code) {
    this.ws = undefined;
    this.queue = [];
    this.routes.forEach((tab) => this.route(["x", tab, code]));
    this.routes.clear();
  }

  // Leader: every long poll waiting, in one request (`POST /v1/polls`), made a moment after the
  // last change so that polls asked together travel together; a newer one replaces it. The
  // polls it answers go to their tabs, the others wait for the next; when it fails, every
  // poll in it fails (status 0) and its tab asks again after a backoff step.
  gather() {
    clearTimeout(this.soon);
    this.soon = setTimeout(() => {
      this.abort?.abort();
      const abort = (this.abort = new AbortController());
      // A poll asked again says how long it waited in earlier requests (`waited`).
      const asked = [...this.polls.values()].map(({ at, ...poll }) => ({ ...poll, waited: Date.now() - at }));
      const answer = (id, status, body) => this.polls.delete(id) && this.route(["x", id, status, body]);
      if (asked.length)
        fetch(this.url + "s", {
          method: "POST",
          body: JSON.stringify({ polls: asked }),
          signal: abort.signal,
        })
          .then((response) => (this.abort == abort && (this.abort = undefined), response.json()))
          .then(({ polls }) => {
            for (const poll of polls) answer(poll.id, poll.status, JSON.stringify(poll.body));
            this.gather();
          })
          .catch(() => abort.signal.aborted || asked.forEach((poll) => answer(poll.id, 0)));
    }, 9);
  }

  route(message) {
    this.tabs.has(message[1]) ? this.down(message) : this.channel.postMessage(message);
  }
}

export class Platform {
  constructor(sink, share) {
    // After `dispose` nothing is reported (a fetch may still be answered then).
    this.live = true;
    const report = (this.report = (kind, id, number, text) => this.live && sink(kind, id, number, text));
    this.sockets = new Map();
    this.timer = undefined;
    this.listeners = [];
    const on = (target, kind, handler) => {
      target.addEventListener(kind, handler);
      this.listeners.push([target, kind, handler]);
    };
    on(window, "online", () => report(NETWORK, 0n, 1));
    on(window, "offline", () => report(NETWORK, 0n, 0));
    // Entering the back/forward cache suspends the client like going offline (the core closes
    // its sockets: a page with an open WebSocket is not kept in that cache); coming back
    // resumes it.
    // A page that goes for good removes its tab's lease (see `lease`).
    on(window, "pagehide", (event) => (event.persisted ? report(NETWORK, 0n, 0) : this.leased && this.save(this.leased)));
    on(window, "pageshow", (event) => {
      if (event.persisted) report(NETWORK, 0n, navigator.onLine ? 1 : 0);
      report(VISIBLE, 0n, 1);
    });
    on(document, "visibilitychange", () => report(VISIBLE, 0n, document.hidden ? 0 : 1));
    // Sharing needs both APIs; without them (or opted out) each client has its own socket.
    this.shared = share && self.BroadcastChannel && navigator.locks;
    // A page loaded offline starts offline: no attempt until the browser says it is back. This
    // timer is set before the driver arms its first one, so the core hears it first.
    if (!navigator.onLine) setTimeout(() => report(NETWORK, 0n, 0));
  }

  /** Opens socket `link` offering both subprotocols; false when the URL is refused at once. */
  open(link, url, protocol, tokenProtocol) {
    let socket;
    try {
      if (this.shared) {
        socket = share(url).socket(tokenProtocol.slice(13));
      } else socket = new WebSocket(url, [protocol, tokenProtocol]);
    } catch {
      return false;
    }
    socket.onopen = () => this.report(OPEN, link, 0);
    socket.onmessage = (message) => typeof message.data === "string" && this.report(MESSAGE, link, 0, message.data);
    socket.onclose = (event) => {
      this.sockets.delete(link);
      this.report(CLOSED, link, event.code);
      // Another page took the lead: no failure, so reconnect at once (as on becoming visible).
      if (event.again) this.report(VISIBLE, 0n, 1);
    };
    this.sockets.set(link, socket);
    return true;
  }

  send(link, text) {
    try {
      this.sockets.get(link)?.send(text);
    } catch {
      // Not open yet or already closing: the core resends what was not acknowledged.
    }
  }

  /** Closes socket `link` without reporting it (the core asked for it). */
  closeSocket(link) {
    const socket = this.sockets.get(link);
    if (!socket) return;
    this.sockets.delete(link);
    socket.onopen = socket.onmessage = socket.onclose = null;
    socket.close();
  }

  fetch(request, method, url, token, body) {
    const done = (status, text) => this.report(HTTP, request, status, text);
    // A sharing page's long polls go through the leader of the pages polling this server.
    const [path, query] = url.split("?");
    if (this.shared && query && path.endsWith("/v1/poll")) return share(path).poll(query, token, done);
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    fetch(url, { method, headers, body })
      .then(async (response) => done(response.status, await response.text()))
      .catch(() => done(0));
  }

  /** Arms the one timer (replacing the previous one), or disarms it when `ms` is undefined. */
  arm(ms) {
    clearTimeout(this.timer);
    this.timer = ms === undefined ? undefined : setTimeout(() => this.report(TIMER, 0n, 0), ms);
  }

  load(key) {
    try {
      return localStorage.getItem(key) ?? undefined;
    } catch {
      return undefined;
    }
  }

  /** Stores `value` under `key`; without a value, removes the key. */
  save(key, value) {
    try {
      value === undefined ? localStorage.removeItem(key) : localStorage.setItem(key, value);
    } catch {
      // Storage full or forbidden: the outbox still works for this page's lifetime.
    }
  }

  keys() {
    try {
      return Object.keys(localStorage);
    } catch {
      return [];
    }
  }

  /**
   * The Rust API's storage for several tabs (sdk/src/tab_storage.rs; the npm package keeps its
   * own in chorus.js): this tab's lease, the time written into it now and every 5 s, removed
   * when the page goes away or the platform is disposed.
   */
  set lease(key) {
    const renew = () => this.save(key, String(Date.now()));
    renew();
    this.leased = key;
    this.renewal = setInterval(renew, 5000);
  }

  /** 64 random bits from `crypto.getRandomValues`, or undefined when there is no crypto. */
  seed() {
    try {
      return crypto.getRandomValues(new BigUint64Array(1))[0];
    } catch {
      return undefined;
    }
  }

  /** Stops everything: sockets closed, timer cleared, listeners removed. */
  dispose() {
    for (const link of [...this.sockets.keys()]) this.closeSocket(link);
    this.arm(undefined);
    for (const [target, kind, handler] of this.listeners) target.removeEventListener(kind, handler);
    this.listeners = [];
    clearInterval(this.renewal);
    if (this.leased) this.save(this.leased);
    this.live = false;
  }
}
