// The CodeMirror page yjs.test.mjs bundles: a CodeMirror 6 editor bound to the document `notes`
// of room `?room=` through y-codemirror.next, with the npm package's `ChorusProvider` (its
// awareness carries the user's name, colour and selection), for the user `?token=` names.
import { basicSetup, EditorView } from "codemirror";
import { yCollab } from "y-codemirror.next";
import * as Y from "yjs";
import { ChorusClient } from "../../../pkg/chorus.js";
import { ChorusProvider } from "../../../pkg/yjs.js";

const params = new URLSearchParams(location.search);
const client = await ChorusClient.connect({ url: location.origin, token: params.get("token"), wasmUrl: "/pkg/chorus_bg.wasm" });
const room = client.join(params.get("room"));
const doc = new Y.Doc();
const text = doc.getText("body");
const provider = new ChorusProvider(room, doc, { name: "notes" });
provider.awareness.setLocalStateField("user", { name: params.get("name"), color: params.get("color"), colorLight: `${params.get("color")}33` });
await provider.whenSynced();
const view = new EditorView({ doc: text.toString(), extensions: [basicSetup, yCollab(text, provider.awareness)], parent: document.body });
Object.assign(window, { client, room, doc, text, provider, view });
document.body.dataset.ready = "yes";
