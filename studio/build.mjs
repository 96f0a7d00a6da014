// Bundle the studio's front end: node build.mjs <outdir>. Deterministic output (no timestamps, no
// absolute paths), so `make studio-assets-check` can compare it with the committed bundle byte for byte.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
if (!out) throw new Error("usage: node build.mjs <outdir>");
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: "src/main.jsx" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "none",
  charset: "utf8",
  outdir: out,
  logLevel: "warning",
});
copyFileSync("src/index.html", join(out, "index.html"));
// the layout worker, as elkjs ships it (main.jsx starts it with new ELK({ workerUrl }))
copyFileSync("node_modules/elkjs/lib/elk-worker.min.js", join(out, "elk-worker.js"));
