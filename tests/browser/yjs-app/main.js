// The page yjs.test.mjs bundles (esbuild, with the repository's built pkg/ and the test
// project's yjs): the npm package's core and Yjs entries and Yjs itself, on `window`.
import * as Y from "yjs";
import { ChorusClient } from "../../../pkg/chorus.js";
import { ChorusProvider } from "../../../pkg/yjs.js";

Object.assign(window, { Y, ChorusClient, ChorusProvider });
document.body.dataset.ready = "yes";
