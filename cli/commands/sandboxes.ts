/** Commands on sandboxes: list them, delete one, upload a directory into one. */

import type { Command } from "commander";
import { z } from "zod";
import { clientFromEnvironment } from "../context";
import { ExitCode } from "../exitCodes";
import { jobLine, plural, printJson } from "../output";
import { uploadDirectory } from "../upload";

const JsonOption = z.object({ json: z.boolean().default(false) });
const UploadOptions = z.object({
  to: z.string().default("/workspace"),
  exclude: z.array(z.string()).default([]),
  sync: z.boolean().default(false),
  json: z.boolean().default(false),
});

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
        `${deleted.deleted ? "deleted" : "nothing to delete"}: ${sandboxId}${deleted.cancelledJobs ? ` (${plural(deleted.cancelledJobs, "job")} cancelled)` : ""}\n`,
      );
    });

  program
    .command("upload")
    .description("Upload a local directory into a sandbox (as a .tar.gz, unpacked by a job) and wait until it is unpacked")
    .argument("<sandbox>", "sandbox ID")
    .argument("<dir>", "local directory whose contents are uploaded")
    .option("--to <path>", "directory inside the sandbox", "/workspace")
    .option("--exclude <glob...>", "leave out what matches (globs relative to <dir>, e.g. node_modules 'dist/**'); .git is always left out")
    .option("--sync", "also remove what the sandbox has under --to and the directory does not (excluded paths are kept)")
    .option("--json", "print the extract job's record as JSON")
    .action(async (sandboxId: string, dir: string, raw: unknown) => {
      const options = UploadOptions.parse(raw);
      const { job, removed } = await uploadDirectory(clientFromEnvironment(), sandboxId, dir, options);
      if (options.json) printJson(job);
      else {
        process.stdout.write(`${jobLine(job)}\n`);
        if (job.extracted) {
          const refused = job.extracted.refusedCount ?? job.extracted.refused.length;
          process.stdout.write(`${plural(job.extracted.entries, "entry", "entries")} into ${options.to}, ${refused} refused\n`);
        }
        for (const refused of job.extracted?.refused ?? []) process.stdout.write(`  refused ${refused.path}: ${refused.reason}\n`);
        if (options.sync) process.stdout.write(`${plural(removed.length, "stale path")} removed\n`);
      }
      process.exitCode = job.status === "succeeded" ? ExitCode.OK : ExitCode.SERVICE_ERROR;
    });
}
