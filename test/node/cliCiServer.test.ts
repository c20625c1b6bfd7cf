/**
 * The CLI's commands for secrets, caches and reruns, as a subprocess against a real `npm run dev`
 * stack (one for the file); what they claim is checked through the typed client.
 */
import { rm } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactSandboxClient } from "../../client";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { type CliResult, runCli } from "./cliProcess";
import { freePort, tempStateDir } from "./devStack";

let stack: DevProcess | undefined;
let stateDir: string | undefined;
let client: ArtifactSandboxClient;

function cli(args: string[], stdin = ""): Promise<CliResult> {
  return runCli(stack?.apiUrl ?? "", args, stdin);
}

beforeAll(async () => {
  stateDir = await tempStateDir("cli-ci-");
  stack = await startDevProcess({
    apiPort: await freePort(),
    hostPort: await freePort(),
    stateDir,
    env: { ARTIFACT_SANDBOX_LOG_LEVEL: "warn" },
  });
  client = new ArtifactSandboxClient({ baseUrl: stack.apiUrl });
}, 120_000);

afterAll(async () => {
  await stack?.kill();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe("artifact-sandbox secrets", () => {
  it("sets a secret from stdin, lists it by name only, a job sees it masked, and rm deletes it", { timeout: 60_000 }, async () => {
    const value = "tok-0123456789abcdef";
    expect(await cli(["secrets", "set", "DEPLOY_TOKEN"], `${value}\n`)).toMatchObject({ code: 0, stdout: "stored DEPLOY_TOKEN\n" });
    const listed = await cli(["secrets", "list"]);
    expect(listed.stdout).toContain("DEPLOY_TOKEN");
    expect(listed.stdout).not.toContain(value);
    const job = await client.waitForJob(
      (
        await client.submit("cli-secret", {
          type: "run",
          command: 'echo "token is $DEPLOY_TOKEN ($(printf %s "$DEPLOY_TOKEN" | wc -c))"',
          secrets: ["DEPLOY_TOKEN"],
        })
      ).id,
    );
    // The value arrived without its trailing newline: 20 characters.
    expect(await client.outputTail(job.id, "stdout", 1000)).toBe("token is *** (20)\n");
    expect(await cli(["secrets", "rm", "DEPLOY_TOKEN"])).toMatchObject({ code: 0, stdout: "deleted: DEPLOY_TOKEN\n" });
    expect((await cli(["secrets", "list"])).stdout).not.toContain("DEPLOY_TOKEN");
  });
});

describe("artifact-sandbox caches", () => {
  it("lists the entries a job saved and deletes them by key", { timeout: 60_000 }, async () => {
    const job = await client.waitForJob(
      (
        await client.submit("cli-cache", {
          type: "run",
          command: "mkdir -p deps && echo x > deps/x",
          cache: [{ key: "cli-deps-1", paths: ["deps"] }],
        })
      ).id,
    );
    expect(job.caches[0]).toMatchObject({ result: "miss", saved: true });
    const listed = await cli(["caches", "list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^cli-deps-1 {2}\d+ bytes {2}last used /m);
    expect(listed.stdout).toContain("1 entry,");
    expect(await cli(["caches", "rm", "cli-deps-1"])).toMatchObject({ code: 0, stdout: "deleted 1 entry\n" });
    expect((await client.listCaches()).caches).toEqual([]);
    expect((await cli(["caches", "rm"])).code).toBe(2);
  });
});

describe("artifact-sandbox pipeline rerun", () => {
  it("runs the failed jobs of a batch again and exits 0 once they succeed", { timeout: 90_000 }, async () => {
    const batch = await client.submitBatch([
      { name: "build", sandboxId: "cli-rerun", job: { type: "run", command: "echo built" } },
      {
        name: "flaky",
        sandboxId: "cli-rerun",
        needs: ["build"],
        job: { type: "run", command: "if [ -f seen ]; then echo ok; else touch seen; exit 1; fi" },
      },
    ]);
    let first = batch;
    while (first.status === "queued" || first.status === "running") first = await client.getBatch(batch.batchId, { wait: 30 });
    expect(first.status).toBe("failed");
    const rerun = await cli(["pipeline", "rerun", batch.batchId, "--failed"]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toContain(`rerun of ${batch.batchId}, 1 job (flaky)\n`);
    expect(rerun.stdout).toMatch(/ flaky: succeeded {2}exit 0, /);
    expect(rerun.stdout).toContain("Pipeline succeeded: 1 of 1 job succeeded");
  });
});
