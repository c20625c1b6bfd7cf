/** `caches list|rm`: the tenant's cache entries, which jobs restore and save by key (`cache` in a job). */
import type { Command } from "commander";
import { z } from "zod";
import { clientFromEnvironment } from "../context";
import { UsageError } from "../failure";
import { printJson } from "../output";

const JsonOption = z.object({ json: z.boolean().default(false) });
const RmOptions = z.object({ prefix: z.string().optional(), all: z.boolean().default(false), json: z.boolean().default(false) });

export function registerCacheCommands(program: Command): void {
  const caches = program.command("caches").description("List and delete cache entries (shared by all your sandboxes)");

  caches
    .command("list")
    .description("List cache entries with their sizes and last use")
    .option("--json", "print them as JSON")
    .action(async (raw: unknown) => {
      const list = await clientFromEnvironment().listCaches();
      if (JsonOption.parse(raw).json) return printJson(list);
      for (const entry of list.caches) process.stdout.write(`${entry.key}  ${entry.sizeBytes} bytes  last used ${entry.lastUsedAt}\n`);
      process.stdout.write(
        `${list.caches.length} ${list.caches.length === 1 ? "entry" : "entries"}, ${list.totalBytes} of ${list.maxBytes} bytes\n`,
      );
    });

  caches
    .command("rm")
    .description("Delete a cache entry by key, or every entry under --prefix, or --all")
    .argument("[key]", "the entry's key")
    .option("--prefix <prefix>", "delete every entry whose key starts with this")
    .option("--all", "delete every entry")
    .option("--json", "print the answer as JSON")
    .action(async (key: string | undefined, raw: unknown) => {
      const options = RmOptions.parse(raw);
      const chosen = [key !== undefined, options.prefix !== undefined, options.all].filter(Boolean).length;
      if (chosen !== 1) throw new UsageError("Name one of: a key, --prefix <prefix>, --all");
      const match = key !== undefined ? { key } : { prefix: options.all ? "" : (options.prefix ?? "") };
      const deleted = await clientFromEnvironment().deleteCaches(match);
      if (options.json) return printJson(deleted);
      process.stdout.write(`deleted ${deleted.deleted} ${deleted.deleted === 1 ? "entry" : "entries"}\n`);
    });
}
