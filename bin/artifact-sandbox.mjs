#!/usr/bin/env node
// The `artifact-sandbox` command. In a checkout it runs the TypeScript (cli/main.ts) through tsx's
// loader, as everything else in the repository does, so it needs no build step there; the packed
// package has no cli/ but the built dist/cli.mjs (npm run build), which needs nothing but Node.
import { existsSync } from "node:fs";

if (existsSync(new URL("../cli/main.ts", import.meta.url))) {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/main.ts");
} else {
  await import("../dist/cli.mjs");
}
