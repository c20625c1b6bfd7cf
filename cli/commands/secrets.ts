/** `secrets set|list|rm`: the tenant's secrets, which jobs name in `secrets`. Values are read from stdin only. */
import { text } from "node:stream/consumers";
import type { Command } from "commander";
import { z } from "zod";
import { clientFromEnvironment } from "../context";
import { UsageError } from "../failure";
import { printJson } from "../output";

const JsonOption = z.object({ json: z.boolean().default(false) });

export function registerSecretCommands(program: Command): void {
  const secrets = program.command("secrets").description("Store, list and delete secrets (jobs get them as env vars, masked in output)");

  secrets
    .command("set")
    .description(
      'Store a secret, its value read from stdin (one trailing newline dropped): printf %s "$TOKEN" | artifact-sandbox secrets set NPM_TOKEN',
    )
    .argument("<name>", "the secret's name, as the env var a job gets")
    .option("--json", "print the stored entry as JSON")
    .action(async (name: string, raw: unknown) => {
      // Never from an argument: it would sit in the shell's history and the process list.
      if (process.stdin.isTTY) throw new UsageError("secrets set reads the value from stdin; pipe it in");
      const value = (await text(process.stdin)).replace(/\r?\n$/, "");
      const entry = await clientFromEnvironment().setSecret(name, value);
      if (JsonOption.parse(raw).json) return printJson(entry);
      process.stdout.write(`stored ${entry.name}\n`);
    });

  secrets
    .command("list")
    .description("List the secrets' names (values are never shown)")
    .option("--json", "print them as JSON")
    .action(async (raw: unknown) => {
      const entries = await clientFromEnvironment().listSecrets();
      if (JsonOption.parse(raw).json) return printJson(entries);
      for (const entry of entries) process.stdout.write(`${entry.name}  updated ${entry.updatedAt}\n`);
    });

  secrets
    .command("rm")
    .description("Delete a secret")
    .argument("<name>", "the secret's name")
    .option("--json", "print the answer as JSON")
    .action(async (name: string, raw: unknown) => {
      const deleted = await clientFromEnvironment().deleteSecret(name);
      if (JsonOption.parse(raw).json) return printJson(deleted);
      process.stdout.write(`${deleted.deleted ? "deleted" : "no such secret"}: ${name}\n`);
    });
}
