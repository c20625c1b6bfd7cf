/**
 * `artifact-sandbox pipeline` as a CI log shows it: a subprocess with pipes (not a terminal)
 * against a real `npm run dev` stack. Progress lines with times and IDs, every job's output
 * prefixed with its name while it runs, failures explained from a JUnit report or the output's
 * first error, GitHub Actions groups and annotations, `pipeline status` and `pipeline logs`, and
 * the pipeline file's placeholders, uploads (with sync), durations and errors.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactSandboxClient } from "../../client";
import { BatchView } from "../../schemas/job";
import { type DevProcess, startDevProcess } from "../../scripts/devProcess";
import { ANSI_ESCAPE, CLI_BIN, finished, startCli } from "./cliProcess";
import { freePort, tempStateDir } from "./devStack";

const run = promisify(execFile);
let stack: DevProcess | undefined;
let stateDir: string | undefined;
let workDir = "";
let client: ArtifactSandboxClient;

const cli = (args: string[], env: Record<string, string> = {}) =>
  // Outside GitHub Actions unless a test says otherwise, whatever runs these tests.
  finished(startCli(stack?.apiUrl ?? "", args, { GITHUB_ACTIONS: "", GITHUB_RUN_ID: "", CI_PIPELINE_ID: "", ...env }, workDir));

const ULID = "[0-9A-HJKMNP-TV-Z]{26}";
const TIME = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ";

beforeAll(async () => {
  stateDir = await tempStateDir("cli-pipeline-");
  workDir = await mkdtemp(join(tmpdir(), "cli-pipeline-work-"));
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
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

// A tap-style JUnit report whose failure names its file and line only in its text.
const JUNIT = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<testsuites name="tap"><testsuite name="test/functions/major.js" tests="2" failures="1">',
  '<testcase name="major(v5.2.3) = 6" classname="test/functions/major.js">',
  '<failure message="should be equal" type="fail"><![CDATA[expected 5, got 6',
  "  at: /workspace/app/test/functions/major.js:24:7]]></failure></testcase>",
  '<testcase name="minor" classname="test/functions/minor.js"/>',
  "</testsuite></testsuites>",
].join("\n");

/** A pipeline with a slow build, a test that fails with a JUnit report, a lint that fails with an error line, and a job skipped after them. */
async function failingPipeline(file: string, sandbox: string): Promise<string> {
  const path = join(workDir, file);
  const steps = [
    { name: "build", sandbox, cwd: "/workspace/app", command: "echo compiling; sleep 5; echo to-stderr >&2; echo built" },
    {
      name: "test",
      sandbox,
      needs: ["build"],
      cwd: "/workspace/app",
      command: `printf '%s' '${JUNIT}' > junit.xml; echo '1..2'; echo '# coverage table'; exit 1`,
      artifacts: ["junit.xml"],
    },
    {
      name: "lint",
      sandbox: `${sandbox}-lint`,
      command:
        "printf 'checking\\nfile one\\nfile two\\nsrc/app.ts:3:5 error no-unused-vars x\\nhint\\n'; for i in $(seq 1 30); do echo filler $i; done; exit 2",
    },
    // An injection attempt: under GitHub Actions this must stay text.
    { name: "noisy", sandbox: `${sandbox}-lint`, needs: ["lint"], command: "echo '::error::injected'" },
    { name: "publish", sandbox: `${sandbox}-pub`, needs: ["test"], command: "echo never" },
  ];
  await writeFile(path, JSON.stringify({ jobs: steps }));
  return path;
}

describe("pipeline run in a CI log", () => {
  it("prints the batch first, a timestamped line per change, every job's output as it runs, and why it failed", {
    timeout: 90_000,
  }, async () => {
    const file = await failingPipeline("fail.json", "follow");
    const { code, stdout, stderr } = await cli(["pipeline", "run", file, "--logs"]);
    expect(code, stderr).toBe(1);
    expect(stdout).not.toMatch(ANSI_ESCAPE);
    const lines = stdout.split("\n");
    expect(lines[0]).toMatch(new RegExp(`^batch ${ULID} \\(5 jobs, run [a-z0-9]+\\)$`));
    // One line per state change: when, which job, its sandbox and ID, and how it ended.
    expect(stdout).toMatch(new RegExp(`^${TIME} build: running {2}\\(sandbox follow, job ${ULID}\\)$`, "m"));
    expect(stdout).toMatch(new RegExp(`^${TIME} build: succeeded {2}exit 0, \\d+\\.\\ds {2}\\(sandbox follow, job ${ULID}\\)$`, "m"));
    expect(stdout).toMatch(
      new RegExp(`^${TIME} test: failed {2}exit 1, \\d+\\.\\ds, NONZERO_EXIT {2}\\(sandbox follow, job ${ULID}\\)$`, "m"),
    );
    expect(stdout).toMatch(new RegExp(`^${TIME} publish: skipped {2}SKIPPED {2}\\(sandbox follow-pub, job ${ULID}\\)$`, "m"));
    // The build's output, prefixed with its name, arrived while it ran: before the line saying it succeeded.
    const firstOutput = lines.indexOf("[build] compiling");
    expect(firstOutput).toBeGreaterThan(0);
    expect(firstOutput).toBeLessThan(lines.findIndex((line) => line.includes("build: succeeded")));
    expect(lines).toContain("[build stderr] to-stderr");
    expect(lines).toContain("[build] built");

    const summary = stdout.slice(stdout.indexOf("\nPipeline failed"));
    expect(summary).toContain("Pipeline failed: 1 of 5 jobs succeeded");
    // The failing test from the job's JUnit report, with its file:line relative to the job's cwd.
    expect(summary).toContain(
      "  1 failing test:\n  - test/functions/major.js > major(v5.2.3) = 6\n      should be equal\n      at test/functions/major.js:24\n",
    );
    expect(summary).not.toContain("coverage table");
    // Without a report: the lines around the first error-looking line, then the tail.
    expect(summary).toContain(
      "  stdout, around its first error:\n    checking\n    file one\n    file two\n    src/app.ts:3:5 error no-unused-vars x\n",
    );
    expect(summary).toContain("  then its last lines:\n");
    expect(summary).toContain("    filler 30\n");
    expect(summary).toMatch(/\nSKIPPED publish \(follow-pub\): needs test \(failed\)\n/);
    expect(summary).toMatch(/\nSKIPPED noisy \(follow-lint\): needs lint \(failed\)\n/);
    expect(summary).not.toMatch(/FAILED \S+ {2}publish/);
  });

  it("under GitHub Actions, groups each job's output and turns failures into ::error annotations", { timeout: 90_000 }, async () => {
    const file = join(workDir, "gha.yaml");
    await writeFile(
      file,
      [
        "jobs:",
        "  - { name: lint, sandbox: gha-lint, command: \"echo '::warning::from the job'; echo 'src/app.ts:3:5 error bad'; exit 2\" }",
        `  - { name: test, sandbox: gha, cwd: /workspace/app, command: "printf '%s' '${JUNIT.replaceAll('"', '\\"').replaceAll("\n", " ")}' > junit.xml; exit 1", artifacts: [junit.xml] }`,
        "",
      ].join("\n"),
    );
    const { code, stdout } = await cli(["pipeline", "run", file, "--logs"], { GITHUB_ACTIONS: "true" });
    expect(code).toBe(1);
    const group = new RegExp(
      `::group::lint \\(sandbox gha-lint, job ${ULID}\\): failed, exit 2, NONZERO_EXIT\\n::stop-commands::(\\w+)\\n::warning::from the job\\nsrc/app.ts:3:5 error bad\\n::\\1::\\n::endgroup::\\n`,
    );
    expect(stdout).toMatch(group);
    expect(stdout).toContain(
      "::error file=test/functions/major.js,line=24,title=test%3A test/functions/major.js > major(v5.2.3) = 6::should be equal%0Aexpected 5, got 6",
    );
    expect(stdout).toContain("::error file=src/app.ts,line=3,title=lint failed::src/app.ts:3:5 error bad\n");
    // The summary's excerpts of job output are inert too: no line of it outside a stop-commands span.
    const outsideSpans = stdout.replace(/::stop-commands::(\w+)\n[\s\S]*?\n::\1::\n/g, "");
    expect(outsideSpans).not.toContain("::warning::from the job");
  });
});

describe("pipeline run with control flow", () => {
  it("shows allowed failures as allowed, runs a `when: always` job, names matrix copies, and exits 0", { timeout: 90_000 }, async () => {
    const file = join(workDir, "flow.yaml");
    await writeFile(
      file,
      [
        "jobs:",
        "  - name: test",
        "    sandbox: flow",
        "    matrix: { V: [a, b] }",
        "    allowFailure: true",
        `    command: 'echo "testing $V"; [ "$V" = a ] || { echo "error: $V is not a" >&2; exit 4; }'`,
        "  - { name: lint, sandbox: flow-lint, allowFailure: true, command: 'echo lint error here; exit 3' }",
        "  - { name: report, sandbox: flow, needs: [test, lint], when: always, command: 'echo reported' }",
        "  - { name: rollback, sandbox: flow, needs: [report], when: on_failure, command: 'echo never' }",
        "",
      ].join("\n"),
    );
    const { code, stdout, stderr } = await cli(["pipeline", "run", file, "--logs"]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(new RegExp(`^batch ${ULID} \\(5 jobs, `));
    expect(stdout).toMatch(new RegExp(`^${TIME} test-a: succeeded {2}exit 0, `, "m"));
    expect(stdout).toMatch(new RegExp(`^${TIME} test-b: failed \\(allowed\\) {2}exit 4, \\d+\\.\\ds, NONZERO_EXIT `, "m"));
    expect(stdout).toMatch(new RegExp(`^${TIME} lint: failed \\(allowed\\) {2}exit 3, `, "m"));
    expect(stdout).toContain("[test-b] testing b\n");
    expect(stdout).toContain("[report] reported\n");
    expect(stdout).toMatch(new RegExp(`^${TIME} rollback: skipped {2}WHEN_NOT_MET `, "m"));

    const summary = stdout.slice(stdout.indexOf("\nPipeline "));
    expect(summary).toMatch(
      new RegExp(
        `^\\nPipeline succeeded: 2 of 5 jobs succeeded, 2 failures allowed, 1 not needed \\(when not met\\) \\(batch ${ULID}\\)\\n`,
      ),
    );
    // Allowed failures are explained, headed as allowed; the job that was not needed is no failure.
    expect(summary).toMatch(/\nALLOWED FAILURE \S+ {2}test-b \(flow\) {2}failed \(allowed\) {2}exit 4/);
    expect(summary).toContain("error: b is not a");
    expect(summary).toMatch(/\nALLOWED FAILURE \S+ {2}lint \(flow-lint\)/);
    expect(summary).not.toMatch(/\nFAILED |SKIPPED|rollback/);

    const batchId = /^batch (\S+)/.exec(stdout)?.[1] ?? "";
    const status = await cli(["pipeline", "status", batchId]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^batch ${batchId} {2}succeeded {2}2 of 5 jobs succeeded, 2 failures allowed, 1 not needed`));
    expect(status.stdout).toMatch(/ {2}test-b \(flow\) {2}failed \(allowed\) {2}exit 4/);

    // `pipeline logs` of the batch shows each matrix copy's output under its copy's name, as the run did;
    // the matrix job's plain name picks every copy, a copy's name that copy alone.
    const copies = ["", "[test-a] testing a", "[test-b stderr] error: b is not a", "[test-b] testing b"];
    const logs = await cli(["pipeline", "logs", batchId]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout.split("\n").sort()).toEqual([...copies, "[lint] lint error here", "[report] reported"].sort());
    const ofMatrixJob = await cli(["pipeline", "logs", batchId, "test"]);
    expect(ofMatrixJob.code, ofMatrixJob.stderr).toBe(0);
    expect(ofMatrixJob.stdout.split("\n").sort()).toEqual(copies);
    const ofCopy = await cli(["pipeline", "logs", batchId, "test-b"]);
    expect(ofCopy.stdout.split("\n").sort()).toEqual(["", "[test-b stderr] error: b is not a", "[test-b] testing b"]);
    const grouped = await cli(["pipeline", "logs", batchId, "test"], { GITHUB_ACTIONS: "true" });
    expect(grouped.stdout).toMatch(new RegExp(`^::group::test-a \\(sandbox flow, job ${ULID}\\): succeeded, exit 0\\n`, "m"));
    expect(grouped.stdout).toMatch(new RegExp(`^::group::test-b \\(sandbox flow, job ${ULID}\\): failed, exit 4`, "m"));

    // Under GitHub Actions an allowed failure is a warning, not an error.
    const gha = await cli(["pipeline", "run", file], { GITHUB_ACTIONS: "true" });
    expect(gha.code).toBe(0);
    expect(gha.stdout).toContain("::warning title=test-b failed::error: b is not a\n");
    expect(gha.stdout).not.toMatch(/^::error/m);
  });
});

describe("pipeline status and logs", () => {
  it("show a batch by its ID, from another shell, and `status` takes a batch ID too", { timeout: 90_000 }, async () => {
    const file = join(workDir, "small.yaml");
    await writeFile(
      file,
      [
        "jobs:",
        "  - { name: one, sandbox: small, command: 'echo out-one; echo err-one >&2' }",
        "  - { name: two, sandbox: small, needs: [one], command: 'echo out-two; exit 3' }",
        "",
      ].join("\n"),
    );
    const run = await cli(["pipeline", "run", file]);
    expect(run.code).toBe(1);
    const batchId = /^batch (\S+)/.exec(run.stdout)?.[1] ?? "";

    const status = await cli(["pipeline", "status", batchId]);
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(new RegExp(`^batch ${batchId} {2}failed {2}1 of 2 jobs succeeded`));
    expect(status.stdout).toMatch(/ {2}two \(small\) {2}failed {2}exit 3/);
    const statusOfBatch = await cli(["status", batchId, "--json"]);
    expect(statusOfBatch.code).toBe(1);
    expect(BatchView.parse(JSON.parse(statusOfBatch.stdout)).jobs.map((job) => job.name)).toEqual(["one", "two"]);

    const logs = await cli(["pipeline", "logs", batchId]);
    expect(logs.code).toBe(0);
    expect(logs.stdout.split("\n").sort()).toEqual(["", "[one stderr] err-one", "[one] out-one", "[two] out-two"]);
    const one = await cli(["pipeline", "logs", batchId, "two"]);
    expect(one.stdout).toBe("[two] out-two\n");
    const neither = await cli(["status", "01KB7Z0Q6X2V4X1T2B9S9YQ0QK"]);
    expect(neither.code).toBe(125);
    expect(neither.stderr).toContain("No job or batch 01KB7Z0Q6X2V4X1T2B9S9YQ0QK");
    const unknown = await cli(["pipeline", "logs", batchId, "three"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("its jobs: one, two");

    // A running batch: status exits 3, and logs follow a running job until it ends (here, cancelled).
    const submitted = await client.submitBatch([
      { name: "slow", sandboxId: "small-slow", job: { type: "run", command: "echo begun; sleep 120" } },
    ]);
    expect((await cli(["pipeline", "status", submitted.batchId])).code).toBe(3);
    const following = startCli(stack?.apiUrl ?? "", ["pipeline", "logs", submitted.batchId], { GITHUB_ACTIONS: "" }, workDir);
    const followed = finished(following);
    await new Promise<void>((resolve) => following.stdout?.on("data", (chunk: Buffer) => chunk.toString().includes("begun") && resolve()));
    await client.cancelBatch(submitted.batchId);
    expect(await followed).toMatchObject({ code: 0, stdout: "[slow] begun\n" });
  });
});

describe("the pipeline file", () => {
  it(`fills \${RUN_ID} and \${env:NAME}, takes durations, and uploads a tree first, in sync with the local one`, {
    timeout: 90_000,
  }, async () => {
    const project = join(workDir, "project");
    await mkdir(join(project, "src"), { recursive: true });
    await mkdir(join(project, "old"), { recursive: true });
    await mkdir(join(project, "node_modules", "dep"), { recursive: true });
    await writeFile(join(project, "src", "main.txt"), "main\n");
    await writeFile(join(project, "old", "stale.txt"), "stale\n");
    await writeFile(join(project, "node_modules", "dep", "index.js"), "local dep\n");
    const file = join(workDir, "synced.yaml");
    await writeFile(
      file,
      [
        "upload:",
        `  - { sandbox: 'sync-\${RUN_ID}', from: project, to: /workspace/src, exclude: [node_modules], sync: true }`,
        "jobs:",
        "  - name: list",
        `    sandbox: sync-\${RUN_ID}`,
        "    cwd: /workspace/src",
        `    env: { GREETING: '\${env:GREETING}', LITERAL: '$\${RUN_ID}' }`,
        "    timeout: 90s",
        `    command: find . -type f | sort; echo "$LITERAL \${GREETING:-unset}"`,
        "",
      ].join("\n"),
    );
    const first = await cli(["pipeline", "run", file, "--run-id", "r7", "--logs"], { GREETING: "hello" });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^upload \S+project -> sync-r7:\/workspace\/src: succeeded, 4 entries, 0 stale paths removed\nbatch /);
    expect(first.stdout).toContain(`[list] ./old/stale.txt\n[list] ./src/main.txt\n[list] \${RUN_ID} hello\n`);

    // Something only the sandbox has under node_modules (excluded) stays; what the tree lost goes.
    await client.waitForJob(
      (
        await client.submit("sync-r7", {
          type: "run",
          cwd: "/workspace/src",
          command: "mkdir -p node_modules/dep && echo built > node_modules/dep/native.node && echo x > made-here.txt",
        })
      ).id,
    );
    await rm(join(project, "old"), { recursive: true });
    const second = await cli(["pipeline", "run", file, "--logs", "--json"], { GREETING: "again", GITHUB_RUN_ID: "r7" });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain("succeeded, 2 entries, 2 stale paths removed\n");
    expect(second.stderr).toContain(`[list] ./node_modules/dep/native.node\n[list] ./src/main.txt\n[list] \${RUN_ID} again\n`);
    const batch = BatchView.parse(JSON.parse(second.stdout));
    expect(batch.jobs[0]?.request).toMatchObject({ type: "run", timeoutMs: 90_000 });

    // The same from the upload command.
    await rm(join(project, "src", "main.txt"));
    const synced = await cli(["upload", "sync-r7", project, "--to", "/workspace/src", "--exclude", "node_modules", "--sync"]);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toContain("1 entry into /workspace/src, 0 refused\n1 stale path removed\n");
    const left = await client.waitForJob(
      (await client.submit("sync-r7", { type: "run", cwd: "/workspace/src", command: "find . | sort" })).id,
    );
    const listing = await new Response(await client.download(left.stdout?.url ?? "")).text();
    expect(listing).toBe(".\n./node_modules\n./node_modules/dep\n./node_modules/dep/native.node\n./src\n");
  });

  it("gives a step the bytes of its stdinFile, found beside the pipeline file, and refuses a file that would overflow the request", {
    timeout: 60_000,
  }, async () => {
    const dir = join(workDir, "with-stdin");
    await mkdir(join(dir, "data"), { recursive: true });
    await writeFile(join(dir, "data", "words.txt"), "pear\napple\npear\n");
    const file = join(dir, "pipeline.yaml");
    await writeFile(
      file,
      ["jobs:", "  - { name: count, sandbox: stdin-file, command: 'sort | uniq -c', stdinFile: data/words.txt }", ""].join("\n"),
    );
    // From another directory: the path is the pipeline file's, not the shell's.
    const counted = await cli(["pipeline", "run", file, "--logs"]);
    expect(counted.code, counted.stderr).toBe(0);
    expect(counted.stdout).toMatch(/\[count\]\s+1 apple\n\[count\]\s+2 pear\n/);

    await writeFile(join(dir, "data", "big.txt"), "\n".repeat(17 * 1024 * 1024));
    await writeFile(file, ["jobs:", "  - { name: big, sandbox: stdin-file, command: 'wc -l', stdinFile: data/big.txt }", ""].join("\n"));
    const refused = await cli(["pipeline", "run", file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/makes a batch request of \d+ bytes with its stdin files, over the 33554432 the API takes/);

    // Within the request, but each matrix copy carries the file whole: refused before submitting too.
    await writeFile(join(dir, "data", "big.txt"), "y".repeat(12 * 1024 * 1024));
    await writeFile(
      file,
      [
        "jobs:",
        "  - { name: big, sandbox: stdin-file, matrix: { V: ['1', '2', '3'] }, command: 'wc -c', stdinFile: data/big.txt }",
        "",
      ].join("\n"),
    );
    const copies = await cli(["pipeline", "run", file]);
    expect(copies.code, copies.stderr).toBe(2);
    expect(copies.stderr).toMatch(/its matrix steps' copies come to \d+ bytes of jobs .* over the 33554432 the API takes/);
  });

  it("names the path of every problem, a placeholder that cannot be filled included", async () => {
    const file = join(workDir, "bad.yaml");
    await writeFile(
      file,
      [
        "jobs:",
        `  - { name: a, sandbox: 'x-\${env:SURELY_NOT_SET_ANYWHERE}', command: 'true', timeout: 5 min }`,
        "  - { name: b, sandbox: x, command: 'true', timeout: 20m }",
        "  - { name: c, sandbox: x, command: 'true', timeout: 2m, colour: red }",
        "",
      ].join("\n"),
    );
    const { code, stderr } = await cli(["pipeline", "run", file]);
    expect(code).toBe(2);
    expect(stderr).toContain(`jobs.0.sandbox: \${env:SURELY_NOT_SET_ANYWHERE}: SURELY_NOT_SET_ANYWHERE is not set\n`);
    expect(stderr).toContain('jobs.0.timeout: expected a duration such as 90s, 5m or 1h30m (or milliseconds), got "5 min"\n');
    expect(stderr).toContain('jobs.1.timeout: at most 14m (840000 ms), got "20m"\n');
    expect(stderr).toMatch(/jobs\.2: Unrecognized key: "colour"/);
    expect(stderr).not.toContain("(file)");
  });
});

describe("logs of one job", () => {
  it("keeps stdout and stderr apart, or labels each line", { timeout: 60_000 }, async () => {
    const job = await client.waitForJob((await client.submit("apart", { type: "run", command: "printf 'no newline'; echo oops >&2" })).id);
    const plain = await cli(["logs", job.id]);
    expect(plain).toMatchObject({ code: 0, stdout: "no newline", stderr: "oops\n" });
    const labelled = await cli(["logs", job.id, "--label"]);
    expect(labelled.stdout).toBe("stdout| no newline\nstderr| oops\n");
    const onlyErr = await cli(["logs", job.id, "--stream", "stderr"]);
    expect(onlyErr).toMatchObject({ stdout: "", stderr: "oops\n" });
    // On a terminal (script(1) gives it one) the two never share a line.
    const terminal = await run("script", ["-qec", `${process.execPath} ${CLI_BIN} logs ${job.id}`, "/dev/null"], {
      env: { ...process.env, ARTIFACT_SANDBOX_URL: stack?.apiUrl ?? "" },
    });
    expect(terminal.stdout.replaceAll("\r\n", "\n")).toBe("no newline\noops\n");
  });

  it("counts in words that agree with the number", { timeout: 60_000 }, async () => {
    const tree = join(workDir, "single");
    await mkdir(tree, { recursive: true });
    await writeFile(join(tree, "only.txt"), "1\n");
    const upload = await cli(["upload", "single", tree, "--to", "/workspace/one"]);
    expect(upload.code, upload.stderr).toBe(0);
    expect(upload.stdout).toContain("1 entry into /workspace/one, 0 refused\n");
    const file = join(workDir, "one-job.yaml");
    await writeFile(file, "jobs:\n  - { name: solo, sandbox: single, command: 'true' }\n");
    const run = await cli(["pipeline", "run", file]);
    expect(run.stdout).toMatch(/^batch \S+ \(1 job, run /);
    expect(run.stdout).toContain("Pipeline succeeded: 1 of 1 job succeeded");
  });
});
