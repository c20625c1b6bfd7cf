#!/usr/bin/env node
// The `artifact-sandbox` command: the CLI is TypeScript (cli/main.ts), run through tsx's loader,
// as everything else in this package is, so a checkout needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
