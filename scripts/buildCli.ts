/**
 * `npm run build` (and `npm pack`, through prepack): the CLI and the typed client as plain
 * JavaScript in dist/, each one file with its dependencies inside, so the packed package runs
 * with Node 20 alone: no tsx, no install of anything else.
 */
import { rm } from "node:fs/promises";
import { build } from "esbuild";

// Some bundled dependencies are CommonJS and call require() for Node's own modules.
const REQUIRE_SHIM = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

await rm("dist", { recursive: true, force: true });
const common = { bundle: true, platform: "node", target: "node20", format: "esm", legalComments: "external", logLevel: "warning" } as const;
await build({
  ...common,
  entryPoints: { cli: "cli/main.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  banner: { js: REQUIRE_SHIM },
});
// The client runs in Workers too: it keeps to fetch and web streams, and needs no require().
await build({
  ...common,
  platform: "neutral",
  mainFields: ["module", "main"],
  entryPoints: { client: "client/index.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
});
