/**
 * The CLI installed as CI installs it: `npm pack` (which builds dist/), then the package run with
 * `npx --package <tgz>` from a directory without this repository, with npm offline and only
 * Node's own directory on the PATH; and the GitHub Actions composite action (action.yml), its
 * steps run with bash as the runner runs them, against a real local stack.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import type { CliResult } from "./cliProcess";
import { freePort, tempStateDir } from "./devStack";

const run = promisify(execFile);
const REPO = process.cwd();

let stack: DevProcess | undefined;
let stateDir = "";
let scratch = "";
let tarball = "";
let version = "";

/** A shell environment with nothing of this checkout: Node's own directory and the system's. */
function bareEnv(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: scratch,
    npm_config_cache: join(scratch, "npm-cache"),
    // Nothing may come from a registry: the package must hold all it needs.
    npm_config_offline: "true",
    npm_config_update_notifier: "false",
    ...extra,
  };
}

function runIn(command: string, args: string[], cwd: string, env: Record<string, string>): Promise<CliResult> {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  stateDir = await tempStateDir("cli-install-");
  scratch = await mkdtemp(join(tmpdir(), "cli-install-work-"));
  stack = await startDevProcess({
    apiPort: await freePort(),
    hostPort: await freePort(),
    stateDir,
    env: { ARTIFACT_SANDBOX_LOG_LEVEL: "warn" },
  });
  const packed = await run("npm", ["pack", "--pack-destination", scratch, "--json"], { cwd: REPO, timeout: 120_000 });
  const [info] = z.array(z.object({ filename: z.string(), version: z.string() })).parse(JSON.parse(packed.stdout));
  if (!info) throw new Error("npm pack made no package");
  tarball = join(scratch, info.filename);
  version = info.version;
}, 240_000);

afterAll(async () => {
  await stack?.kill();
  await rm(stateDir, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

describe("the packed CLI", () => {
  it("holds only the entry point, the built JavaScript and the package's metadata, and depends on nothing", async () => {
    const { stdout } = await run("tar", ["tzf", tarball]);
    expect(stdout.trim().split("\n").sort()).toEqual([
      "package/README.md",
      "package/bin/artifact-sandbox.mjs",
      "package/dist/cli.mjs",
      "package/dist/client.mjs",
      "package/package.json",
    ]);
    const manifest = z.looseObject({ dependencies: z.record(z.string(), z.string()).optional() });
    const packedJson = await run("tar", ["xzOf", tarball, "package/package.json"]);
    expect(manifest.parse(JSON.parse(packedJson.stdout)).dependencies ?? {}).toEqual({});
  });

  it("runs with npx from any directory, offline, with neither this repository nor tsx", { timeout: 120_000 }, async () => {
    const elsewhere = join(scratch, "elsewhere");
    await mkdir(elsewhere, { recursive: true });
    const npx = (args: string[]) =>
      runIn(
        "npx",
        ["--yes", "--package", tarball, "artifact-sandbox", ...args],
        elsewhere,
        bareEnv({ ARTIFACT_SANDBOX_URL: stack?.apiUrl ?? "" }),
      );
    const shown = await npx(["--version"]);
    expect(shown, shown.stderr).toMatchObject({ code: 0, stdout: `${version}\n` });
    const help = await npx(["--help"]);
    expect(help.stdout).toContain("pipeline");
    const job = await npx(["run", "packed", "--", "echo from the packed CLI"]);
    expect(job, job.stderr).toMatchObject({ code: 0, stdout: "from the packed CLI\n" });
  });

  it("gives the typed client as artifact-sandbox/client to a project that installs the package", { timeout: 120_000 }, async () => {
    const project = join(scratch, "consumer");
    await mkdir(project, { recursive: true });
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    const installed = await runIn("npm", ["install", "--no-audit", "--no-fund", tarball], project, bareEnv({}));
    expect(installed.code, installed.stderr).toBe(0);
    const script = [
      'import { ArtifactSandboxClient } from "artifact-sandbox/client";',
      "const client = ArtifactSandboxClient.fromEnv(process.env);",
      'const job = await client.waitForJob((await client.submit("consumer", { type: "run", command: "echo typed" })).id);',
      "console.log(job.status);",
    ].join("\n");
    const used = await runIn(
      "node",
      ["--input-type=module", "-e", script],
      project,
      bareEnv({ ARTIFACT_SANDBOX_URL: stack?.apiUrl ?? "" }),
    );
    expect(used, used.stderr).toMatchObject({ code: 0, stdout: "succeeded\n" });
  });
});

// What the runner gives a composite action: its inputs, and steps of bash with an env each.
const ActionFile = z.object({
  inputs: z.record(z.string(), z.object({ description: z.string(), required: z.boolean(), default: z.string().optional() })),
  runs: z.object({
    using: z.literal("composite"),
    steps: z.array(
      z.object({ name: z.string(), shell: z.literal("bash"), env: z.record(z.string(), z.string()).default({}), run: z.string() }),
    ),
  }),
});

/**
 * Runs action.yml's steps in order as the runner does (`bash --noprofile --norc -eo pipefail`),
 * each step's env taking `${{ inputs.NAME }}` from `inputs` or the input's default; the first
 * failing step ends the action. Any other expression fails the test: the steps must need none.
 */
async function runAction(inputs: Record<string, string>, env: Record<string, string>, cwd: string): Promise<CliResult> {
  const action = ActionFile.parse(parseYaml(await readFile(join(REPO, "action.yml"), "utf8")));
  const combined: CliResult = { code: 0, stdout: "", stderr: "" };
  for (const [index, step] of action.runs.steps.entries()) {
    const stepEnv = Object.fromEntries(
      Object.entries(step.env).map(([name, value]) => {
        const input = /^\$\{\{\s*inputs\.([\w-]+)\s*\}\}$/.exec(value)?.[1];
        if (input === undefined) throw new Error(`step ${step.name}: ${name} is not a plain input expression: ${value}`);
        return [name, inputs[input] ?? action.inputs[input]?.default ?? ""];
      }),
    );
    const script = join(scratch, `action-step-${index}.sh`);
    await writeFile(script, step.run);
    const result = await runIn("bash", ["--noprofile", "--norc", "-eo", "pipefail", script], cwd, { ...env, ...stepEnv });
    combined.stdout += result.stdout;
    combined.stderr += result.stderr;
    combined.code = result.code;
    if (result.code !== 0) break;
  }
  return combined;
}

describe("the GitHub Actions action", () => {
  it("runs a pipeline with groups and annotations, fails the step when a job fails, and saves artifacts", {
    timeout: 180_000,
  }, async () => {
    const workspace = join(scratch, "workspace");
    await mkdir(join(workspace, "src"), { recursive: true });
    await writeFile(join(workspace, "src", "input.txt"), "from the repository\n");
    await writeFile(
      join(workspace, "pipeline.yaml"),
      [
        "upload:",
        `  - { sandbox: 'gha-\${RUN_ID}', from: src, to: /workspace/src, sync: true }`,
        "jobs:",
        "  - name: build",
        `    sandbox: gha-\${RUN_ID}`,
        "    cwd: /workspace/src",
        "    command: mkdir -p out && tr a-z A-Z < input.txt > out/upper.txt && echo built",
        "    artifacts: [out/**]",
        "  - name: check",
        `    sandbox: gha-\${RUN_ID}`,
        "    needs: [build]",
        "    cwd: /workspace/src",
        "    command: |",
        "      test \"$MODE\" = pass || { echo 'src/check.sh:2: error: the check failed'; exit 1; }",
        `    env: { MODE: '\${env:MODE}' }`,
        "",
      ].join("\n"),
    );
    const env = bareEnv({
      GITHUB_ACTIONS: "true",
      GITHUB_RUN_ID: "4242",
      GITHUB_ACTION_PATH: REPO,
      GITHUB_WORKSPACE: workspace,
    });
    const inputs = { pipeline: "pipeline.yaml", url: stack?.apiUrl ?? "", out: "artifacts" };

    // From the packed package: what a workflow that keeps a release's .tgz does.
    const failing = await runAction({ ...inputs, package: tarball }, { ...env, MODE: "fail" }, workspace);
    expect(failing.code, failing.stderr).toBe(1);
    expect(failing.stdout).toMatch(/^batch \S+ \(2 jobs, run 4242\)$/m);
    expect(failing.stdout).toMatch(/::group::build \(sandbox gha-4242, job \S+\): succeeded, exit 0\n::stop-commands::\w+\nbuilt\n/);
    expect(failing.stdout).toContain("::error file=src/check.sh,line=2,title=check failed::src/check.sh:2: error: the check failed\n");

    // From the action's own checkout (dist/ built by npm pack above, as the first step would).
    const passing = await runAction(inputs, { ...env, MODE: "pass" }, workspace);
    expect(passing.code, passing.stderr).toBe(0);
    expect(passing.stdout).toContain("Pipeline succeeded: 2 of 2 jobs succeeded");
    expect(await readFile(join(workspace, "artifacts", "build", "out", "upper.txt"), "utf8")).toBe("FROM THE REPOSITORY\n");
  });
});
