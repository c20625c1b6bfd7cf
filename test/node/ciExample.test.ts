/**
 * The README's CI examples, run as written against a real `npm run dev` stack: the worked
 * pipeline (examples/ci/: the pipeline file and the CI step's shell lines, with the CLI on the
 * PATH) run twice as two CI runs, and the same kind of pipeline with nothing but curl and jq
 * (examples/ci-pipeline.sh). The README holds each file's text verbatim.
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactSandboxClient } from "../../client";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { ANSI_ESCAPE, CLI_BIN } from "./cliProcess";
import { freePort, tempStateDir } from "./devStack";

const run = promisify(execFile);
const ULID = "[0-9A-HJKMNP-TV-Z]{26}";
const TIME = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ";

let stack: DevProcess | undefined;
const cleanup: string[] = [];

beforeAll(async () => {
  const stateDir = await tempStateDir("ci-example-");
  cleanup.push(stateDir);
  stack = await startDevProcess({ apiPort: await freePort(), hostPort: await freePort(), stateDir });
}, 120_000);

afterAll(async () => {
  await stack?.kill();
  await Promise.all(cleanup.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function expectInReadme(file: string): Promise<void> {
  const [readme, text] = await Promise.all([readFile("README.md", "utf8"), readFile(file, "utf8")]);
  expect(readme, `README.md holds ${file} verbatim`).toContain(text.replace(/^#!.*\n/, ""));
}

describe("the README's worked CI pipeline (examples/ci)", () => {
  it("caches, masks the secret, reports after a failure, and re-runs only what failed with the passing jobs' artifacts", {
    timeout: 400_000,
  }, async () => {
    await expectInReadme("examples/ci/pipeline.yaml");
    await expectInReadme("examples/ci/ci-step.sh");
    const work = await mkdtemp(join(tmpdir(), "ci-step-"));
    cleanup.push(work);
    // The CLI on the PATH, as `npm install -g` of the packed package puts it.
    await writeFile(join(work, "artifact-sandbox"), `#!/bin/sh\nexec "${process.execPath}" "${CLI_BIN}" "$@"\n`);
    await chmod(join(work, "artifact-sandbox"), 0o755);
    const token = `demo-${crypto.randomUUID()}`;
    const ciStep = (runId: string) =>
      run("bash", [resolve("examples/ci/ci-step.sh"), resolve("examples/ci/pipeline.yaml"), join(work, `out-${runId}`)], {
        cwd: work,
        timeout: 180_000,
        env: {
          ...process.env,
          PATH: `${work}:${process.env.PATH}`,
          ARTIFACT_SANDBOX_URL: stack?.apiUrl ?? "",
          ARTIFACT_SANDBOX_KEY: "",
          DEMO_TOKEN: token,
          CI_PIPELINE_ID: runId,
          GITHUB_RUN_ID: "",
          GITHUB_ACTIONS: "",
        },
      });

    const first = await ciStep("101");
    const output = first.stdout + first.stderr;
    expect(output).not.toMatch(ANSI_ESCAPE);
    // The secret: the command had it, every log shows ***.
    expect(output).not.toContain(token);
    expect(first.stdout).toContain("[test] logging in to the test registry with ***\n");
    const [firstRun = "", rerun = ""] = first.stdout.split(/^re-running what failed in batch /m);
    // First run: the cache missed and was saved; the flaky test failed; the report ran anyway.
    expect(firstRun).toMatch(new RegExp(`^${TIME} deps: succeeded {2}exit 0, [^\\n]*cache deps-[0-9a-f]+\\.\\.\\.: miss, saved `, "m"));
    expect(firstRun).toMatch(new RegExp(`^${TIME} test: failed {2}exit 1, `, "m"));
    expect(firstRun).toMatch(new RegExp(`^${TIME} report: succeeded {2}exit 0, `, "m"));
    expect(firstRun).toContain("[report] build report\n[report] dist/hello.js\n");
    expect(firstRun).toContain("Pipeline failed: 3 of 4 jobs succeeded");
    expect(firstRun).toContain("error: the test server did not answer in time (flaky)");
    const firstBatch = new RegExp(`^batch (${ULID}) \\(4 jobs, run 101\\)$`, "m").exec(firstRun)?.[1] ?? "";
    expect(firstBatch).not.toBe("");

    // The re-run: only the failed test and the report that needs it, with the first build's dist/.
    expect(rerun).toMatch(new RegExp(`^${firstBatch}\\nbatch (${ULID}): rerun of ${firstBatch}, 2 jobs \\(test, report\\)$`, "m"));
    expect(rerun).toMatch(new RegExp(`^${TIME} test: succeeded {2}exit 0, `, "m"));
    expect(rerun).toContain("[test] 1 test passed\n");
    expect(rerun).toContain("Pipeline succeeded: 2 of 2 jobs succeeded");
    expect(await readFile(join(work, "out-101", "report", "report.txt"), "utf8")).toMatch(/^build report\ndist\/hello\.js\n/);

    const client = new ArtifactSandboxClient({ baseUrl: stack?.apiUrl ?? "" });
    const rerunBatch = await client.getBatch(new RegExp(`^batch (${ULID}): rerun`, "m").exec(rerun)?.[1] ?? "");
    const before = await client.getBatch(firstBatch);
    const build = before.jobs.find((job) => job.name === "build");
    const test = rerunBatch.jobs.find((job) => job.name === "test");
    expect(test?.request).toMatchObject({ type: "run", inputs: [{ from: build?.id }], secrets: ["DEMO_TOKEN"] });
    // Records name the secret, never its value; its stored output is masked too.
    expect(JSON.stringify([before, rerunBatch])).not.toContain(token);
    expect(await client.outputTail(test?.id ?? "", "stdout", 1000)).toContain("with ***\n");

    // A second CI run: fresh sandboxes, and the dependencies come from the cache.
    const second = await ciStep("102");
    expect(second.stdout + second.stderr).not.toContain(token);
    expect(second.stdout).toMatch(new RegExp(`^${TIME} deps: succeeded {2}exit 0, [^\\n]*cache deps-[0-9a-f]+\\.\\.\\.: hit `, "m"));
    expect(second.stdout).toContain("[deps] dependencies up to date: 2 from the cache\n");
  });
});

describe("the README's curl and jq pipeline (examples/ci-pipeline.sh)", () => {
  it("runs as written and produces the release", { timeout: 180_000 }, async () => {
    await expectInReadme("examples/ci-pipeline.sh");
    const out = await mkdtemp(join(tmpdir(), "ci-example-out-"));
    cleanup.push(out);
    const { stdout } = await run("bash", ["examples/ci-pipeline.sh", "examples/hello-project", out], {
      env: { ...process.env, ARTIFACT_SANDBOX_URL: stack?.apiUrl ?? "" },
      timeout: 150_000,
    });
    // The build's live log, each job's status, and where the release went.
    expect(stdout).toContain('"text":"built dist/\\n"');
    expect(stdout).toContain("build: succeeded\ntest: succeeded\npackage: succeeded");

    const { stdout: listing } = await run("tar", ["tzvf", join(out, "release.tar.gz")]);
    expect(listing).toMatch(/^-rwxr-xr-x .* dist\/run\.sh$/m);
    expect(listing).toMatch(/ dist\/hello\.js$/m);
  });
});
