/** Commands on sandboxes: list them, delete one, upload a directory into one. */

import { stat } from "node:fs/promises";
import { relative, sep } from "node:path";
import { buffer } from "node:stream/consumers";
import { gzipSync } from "node:zlib";
import type { Command } from "commander";
import { packTar } from "modern-tar/fs";
import picomatch from "picomatch";
import { z } from "zod";
import { clientFromEnvironment } from "../context";
import { ExitCode } from "../exitCodes";
import { UsageError } from "../failure";
import { jobLine, printJson } from "../output";

const JsonOption = z.object({ json: z.boolean().default(false) });
const UploadOptions = z.object({
  to: z.string().default("/workspace"),
  exclude: z.array(z.string()).default([]),
  json: z.boolean().default(false),
});

/** Leaves out `.git` always, and whatever matches the --exclude globs (relative to the directory). */
function uploadFilter(dir: string, exclude: string[]): (path: string) => boolean {
  const excluded = exclude.length > 0 ? picomatch(exclude, { dot: true }) : () => false;
  return (path) => {
    const inside = relative(dir, path);
    if (inside === "") return true;
    return inside.split(sep)[0] !== ".git" && !excluded(inside.split(sep).join("/"));
  };
}

export function registerSandboxCommands(program: Command): void {
  program
    .command("sandboxes")
    .description("List your sandboxes")
    .option("--json", "print them as JSON")
    .action(async (raw: unknown) => {
      const sandboxes = await clientFromEnvironment().listSandboxes();
      if (JsonOption.parse(raw).json) return printJson(sandboxes);
      for (const sandbox of sandboxes) {
        process.stdout.write(`${sandbox.sandboxId}  last active ${sandbox.lastActiveAt}  expires ${sandbox.expiresAt}\n`);
      }
    });

  program
    .command("rm")
    .description("Delete a sandbox: cancel its unfinished jobs, destroy its container and workspace")
    .argument("<sandbox>", "sandbox ID")
    .option("--json", "print the answer as JSON")
    .action(async (sandboxId: string, raw: unknown) => {
      const deleted = await clientFromEnvironment().deleteSandbox(sandboxId);
      if (JsonOption.parse(raw).json) return printJson(deleted);
      process.stdout.write(
        `${deleted.deleted ? "deleted" : "nothing to delete"}: ${sandboxId}${deleted.cancelledJobs ? ` (${deleted.cancelledJobs} jobs cancelled)` : ""}\n`,
      );
    });

  program
    .command("upload")
    .description("Upload a local directory into a sandbox (as a .tar.gz, unpacked by a job) and wait until it is unpacked")
    .argument("<sandbox>", "sandbox ID")
    .argument("<dir>", "local directory whose contents are uploaded")
    .option("--to <path>", "directory inside the sandbox", "/workspace")
    .option("--exclude <glob...>", "leave out what matches (globs relative to <dir>, e.g. node_modules 'dist/**'); .git is always left out")
    .option("--json", "print the extract job's record as JSON")
    .action(async (sandboxId: string, dir: string, raw: unknown) => {
      const options = UploadOptions.parse(raw);
      if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`${dir} is not a directory`);
      // Packed in memory: the API takes at most 100 MiB and needs the length before the body.
      const archive = new Uint8Array(gzipSync(await buffer(packTar(dir, { filter: uploadFilter(dir, options.exclude) }))));
      const client = clientFromEnvironment();
      const submitted = await client.uploadArchive(sandboxId, archive, { path: options.to });
      const job = await client.waitForJob(submitted.id);
      if (options.json) printJson(job);
      else {
        process.stdout.write(`${jobLine(job)}\n`);
        if (job.extracted)
          process.stdout.write(`${job.extracted.entries} entries into ${options.to}, ${job.extracted.refused.length} refused\n`);
        for (const refused of job.extracted?.refused ?? []) process.stdout.write(`  refused ${refused.path}: ${refused.reason}\n`);
      }
      process.exitCode = job.status === "succeeded" ? ExitCode.OK : ExitCode.SERVICE_ERROR;
    });
}
