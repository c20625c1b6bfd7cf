/**
 * `artifact-sandbox`: the command-line client for CI. Each command lives in cli/commands/; this
 * file wires them into one program and turns every failure into a message and an exit code
 * (cli/exitCodes.ts).
 */
import { Command, type CommanderError } from "commander";
import { registerCacheCommands } from "./commands/caches";
import { registerJobCommands } from "./commands/jobs";
import { registerPipeline } from "./commands/pipeline";
import { registerPipelineRerun } from "./commands/pipelineRerun";
import { registerRun } from "./commands/run";
import { registerSandboxCommands } from "./commands/sandboxes";
import { registerSecretCommands } from "./commands/secrets";
import { registerWebhookCommands } from "./commands/webhooks";
import { ExitCode } from "./exitCodes";
import { describeFailure } from "./failure";
import { cliVersion } from "./version";

const program = new Command("artifact-sandbox")
  .description(
    "Run build steps in artifact-sandbox sandboxes from CI.\n\n" +
      "Environment: ARTIFACT_SANDBOX_URL (default http://localhost:8787), ARTIFACT_SANDBOX_KEY (API key, sent as a bearer token).\n" +
      "Exit codes: the job's own command's code for run and wait; 124 timed out; 125 service or client error; 130 cancelled; 2 bad usage; " +
      "1 a pipeline job failed; pipeline status: 3 still running.",
  )
  .version(cliVersion(), "-V, --version", "print the version")
  .showHelpAfterError("(add --help for usage)")
  // Usage errors exit 2, as most Unix tools do, so they are never mistaken for a command's exit code.
  .exitOverride((error: CommanderError) => {
    process.exit(error.exitCode === 0 ? 0 : ExitCode.USAGE);
  });

// A reader that stops early (`| head`) is not an error: stop quietly, as Unix tools do.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

registerRun(program);
registerJobCommands(program);
registerSandboxCommands(program);
registerPipeline(program);
registerWebhookCommands(program);
registerPipelineRerun(program);
registerSecretCommands(program);
registerCacheCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const failure = describeFailure(error);
  process.stderr.write(`artifact-sandbox: ${failure.message}\n`);
  process.exitCode = failure.exitCode;
}
