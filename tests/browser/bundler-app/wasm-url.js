// The esbuild build that imports the wasm with the file loader and passes its URL (pkg/README.md,
// "Bundlers"), instead of copying the file next to the bundle.
import wasmUrl from "@chorus/client/chorus_bg.wasm";

globalThis.chorusWasmUrl = wasmUrl;
await import("./main.js");
