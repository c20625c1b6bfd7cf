/**
 * Bundles the agent into one self-contained ESM file: inside the sandbox there is only the host's
 * node binary, no node_modules.
 */
import { build } from "esbuild";

const ENTRY = new URL("./main.ts", import.meta.url).pathname;

export async function buildAgentBundle(outFile: string): Promise<void> {
  await build({
    entryPoints: [ENTRY],
    outfile: outFile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "silent",
    legalComments: "none",
  });
}
