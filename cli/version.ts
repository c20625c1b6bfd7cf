/** The CLI's version: its package's. The checkout's cli/ and the packed dist/ both sit one level below package.json. */
import { readFileSync } from "node:fs";
import { z } from "zod";

const PackageJson = z.object({ version: z.string() });

export function cliVersion(): string {
  return PackageJson.parse(JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))).version;
}
