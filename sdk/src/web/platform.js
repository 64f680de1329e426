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

export class Platform {
  constructor(sink) {
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
    on(window, "pagehide", (event) => event.persisted && report(NETWORK, 0n, 0));
    on(window, "pageshow", (event) => {
      if (event.persisted) report(NETWORK, 0n, navigator.onLine ? 1 : 0);
      report(VISIBLE, 0n, 1);
    });
    on(document, "visibilitychange", () => report(VISIBLE, 0n, document.hidden ? 0 : 1));
    // A page loaded offline starts offline: no attempt until the browser says it is back. This
    // timer is set before the driver arms its first one, so the core hears it first.
    if (!navigator.onLine) setTimeout(() => report(NETWORK, 0n, 0));
  }

  /** Opens socket `link` offering both subprotocols; false when the URL is refused at once. */
  open(link, url, protocol, tokenProtocol) {
    let socket;
    try {
      socket = new WebSocket(url, [protocol, tokenProtocol]);
    } catch {
      return false;
    }
    socket.onopen = () => this.report(OPEN, link, 0);
    socket.onmessage = (message) => typeof message.data === "string" && this.report(MESSAGE, link, 0, message.data);
    socket.onclose = (event) => {
      this.sockets.delete(link);
      this.report(CLOSED, link, event.code);
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
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    fetch(url, { method, headers, body })
      .then(async (response) => this.report(HTTP, request, response.status, await response.text()))
      .catch(() => this.report(HTTP, request, 0));
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

  save(key, value) {
    try {
      localStorage.setItem(key, value);
    } catch {
      // Storage full or forbidden: the outbox still works for this page's lifetime.
    }
  }

  /** 64 random bits from `crypto.getRandomValues` (throws when there is no crypto). */
  seed() {
    return crypto.getRandomValues(new BigUint64Array(1))[0];
  }

  /** Stops everything: sockets closed, timer cleared, listeners removed. */
  dispose() {
    for (const link of [...this.sockets.keys()]) this.closeSocket(link);
    this.arm(undefined);
    for (const [target, kind, handler] of this.listeners) target.removeEventListener(kind, handler);
    this.listeners = [];
    this.live = false;
  }
}
