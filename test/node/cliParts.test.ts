/**
 * The CLI's text handling on its own, without a stack: JUnit reports as tap, pytest, Jest and Go
 * write them, the excerpt around a log's first error, durations, placeholders, GitHub Actions'
 * escaping of workflow commands, and which jobs of a batch a name picks (matrix copies as the API
 * expands them).
 */
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { expandMatrix } from "../../api/matrix";
import { parseDuration } from "../../cli/duration";
import { excerptOf } from "../../cli/failureReport";
import { errorAnnotation } from "../../cli/githubActions";
import { interpolate, runIdFrom } from "../../cli/interpolate";
import { failedTests } from "../../cli/junit";
import { pipelineFrom } from "../../cli/pipelineFile";
import { jobsNamed } from "../../cli/pipelineLogs";
import { BatchEntry, type BatchView, JobView, newJobRecord } from "../../schemas/job";

describe("failing tests from JUnit XML", () => {
  it("reads a pytest report: the test's file and line attributes, an error counts as a failure", () => {
    const xml = `<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" tests="3">
  <testcase classname="tests.test_math" name="test_add" file="tests/test_math.py" line="11">
    <failure message="assert 3 == 4">def test_add():
&gt;       assert add(1, 2) == 4
E       assert 3 == 4

tests/test_math.py:13: AssertionError</failure>
  </testcase>
  <testcase classname="tests.test_io" name="test_read" file="tests/test_io.py" line="4"><error message="FileNotFoundError: x">boom</error></testcase>
  <testcase classname="tests.test_math" name="test_ok" file="tests/test_math.py" line="20"/>
</testsuite></testsuites>`;
    expect(failedTests(xml)).toEqual([
      expect.objectContaining({ name: "tests.test_math > test_add", message: "assert 3 == 4", file: "tests/test_math.py", line: 13 }),
      expect.objectContaining({ name: "tests.test_io > test_read", message: "FileNotFoundError: x", file: "tests/test_io.py", line: 4 }),
    ]);
  });

  it("reads Jest's (a stack trace with a column; node_modules frames skipped) and go-junit-report's (a bare testsuite root)", () => {
    const jest = `<testsuites name="jest tests"><testsuite name="sum" tests="1" failures="1">
<testcase classname="sum adds" name="sum adds" time="0.002"><failure>Error: expect(received).toBe(expected)
    at Object.toBe (/work/node_modules/expect/build/index.js:10:3)
    at Object.&lt;anonymous&gt; (/workspace/app/sum.test.js:4:17)</failure></testcase></testsuite></testsuites>`;
    expect(failedTests(jest)).toEqual([
      expect.objectContaining({ message: "Error: expect(received).toBe(expected)", file: "/workspace/app/sum.test.js", line: 4 }),
    ]);
    const go = `<testsuite name="example.com/pkg" tests="2" failures="1"><testcase classname="pkg" name="TestSplit">
<failure message="Failed" type="">    split_test.go:17: got [a b], want [a]</failure></testcase><testcase classname="pkg" name="TestJoin"/></testsuite>`;
    expect(failedTests(go)).toEqual([expect.objectContaining({ name: "pkg > TestSplit", file: "split_test.go", line: 17 })]);
  });

  it("finds nothing in a report without failures, and refuses what is not a report", () => {
    expect(failedTests('<testsuites><testsuite name="a"><testcase name="ok"/></testsuite></testsuites>')).toEqual([]);
    expect(failedTests("<html><body/></html>")).toBeUndefined();
    expect(failedTests("<testsuite><unclosed></testsuite>")).toBeUndefined();
  });
});

describe("the excerpt of a failed job's output", () => {
  it("shows the lines around the first error-looking line, then the tail without repeating it", () => {
    const lines = ["a", "b", "c", "d", "0 errors so far", "Error: boom", "e", ...Array.from({ length: 40 }, (_, i) => `line ${i}`)];
    const excerpt = excerptOf(lines);
    expect(excerpt.around?.lines).toEqual([
      "c",
      "d",
      "0 errors so far",
      "Error: boom",
      "e",
      "line 0",
      "line 1",
      "line 2",
      "line 3",
      "line 4",
    ]);
    expect(excerpt.tail[0]).toBe("line 25");
    expect(excerpt.tail).toHaveLength(15);
    expect(excerptOf(["x", "ERROR here", "y"]).tail).toEqual([]);
    expect(excerptOf(["all", "fine"])).toEqual({ tail: ["all", "fine"] });
  });
});

describe("the pipeline file's durations and placeholders", () => {
  it("reads 90s, 5m, 1h30m and 1500ms; refuses anything else", () => {
    expect([parseDuration("90s"), parseDuration("5m"), parseDuration("1h30m"), parseDuration("1500ms")]).toEqual([
      90_000, 300_000, 5_400_000, 1500,
    ]);
    expect([parseDuration("5 min"), parseDuration("m"), parseDuration(""), parseDuration("10")]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it("fills RUN_ID and env placeholders, leaves a shell's own variables alone, and names what it could not fill", () => {
    const placeholders = { sandbox: "ci-$" + "{RUN_ID}", command: "echo $" + "{HOME} $$" + "{RUN_ID} $" + "{env:A} $" + "{env:B}" };
    expect(interpolate({ jobs: [placeholders] }, { runId: "42", env: { A: "a" } })).toEqual({
      value: { jobs: [{ sandbox: "ci-42", command: "echo $" + "{HOME} $" + "{RUN_ID} a " }] },
      problems: [{ path: "jobs.0.command", message: "$" + "{env:B}: B is not set" }],
    });
    expect(runIdFrom(undefined, { GITHUB_RUN_ID: "9", CI_PIPELINE_ID: "8" })).toBe("9");
    expect(runIdFrom(undefined, { CI_PIPELINE_ID: "8" })).toBe("8");
    expect(runIdFrom("mine", { GITHUB_RUN_ID: "9" })).toBe("mine");
    expect(runIdFrom(undefined, {})).toMatch(/^[a-z0-9]{8}$/);
  });
});

describe("GitHub Actions annotations", () => {
  it("escape what would end or split a command", () => {
    expect(errorAnnotation({ title: "a: b, c", file: "src/x,y.ts", line: 3, message: "50% done\nnext" })).toBe(
      "::error file=src/x%2Cy.ts,line=3,title=a%3A b%2C c::50%25 done%0Anext\n",
    );
  });
});

describe("the pipeline file's fields", () => {
  const values = { runId: "7", env: {} };
  const read = (yaml: string) => pipelineFrom(parseYaml(yaml), values);

  it("takes every field of a batch entry and of a run job in the short form", () => {
    const defaults = {
      type: "run",
      cwd: "/workspace",
      env: {},
      timeoutMs: 60_000,
      retries: 0,
      artifacts: [],
      inputs: [],
      secrets: [],
      cache: [],
    };
    const pipeline = read(
      [
        "jobs:",
        "  - name: test",
        `    sandbox: app-$${"{RUN_ID}"}`,
        "    command: npm test",
        "    cwd: /workspace/src",
        "    env: { CI: 'true' }",
        "    stdin: input",
        "    timeout: 2m",
        "    retries: 1",
        "    artifacts: [junit.xml]",
        "    inputs: [{ from: build, artifacts: [dist/**] }]",
        "    secrets: [NPM_TOKEN]",
        "    cache: [{ key: 'npm-{{ hashFiles(\"package-lock.json\") }}', paths: [node_modules], restoreKeys: [npm-] }]",
        "    matrix: { NODE: ['18', '20'] }",
        "    needs: [build]",
        "    allowFailure: true",
        "  - { name: report, sandbox: app-7, needs: [test], when: always, command: ./report.sh }",
      ].join("\n"),
    );
    expect(pipeline).toEqual({
      uploads: [],
      stdinFiles: [],
      entries: [
        {
          name: "test",
          sandboxId: "app-7",
          needs: ["build"],
          when: "on_success",
          allowFailure: true,
          matrix: { NODE: ["18", "20"] },
          job: {
            type: "run",
            command: "npm test",
            cwd: "/workspace/src",
            env: { CI: "true" },
            stdin: "input",
            timeoutMs: 120_000,
            retries: 1,
            artifacts: ["junit.xml"],
            inputs: [{ from: "build", artifacts: ["dist/**"], path: "/workspace" }],
            secrets: ["NPM_TOKEN"],
            cache: [{ key: 'npm-{{ hashFiles("package-lock.json") }}', paths: ["node_modules"], restoreKeys: ["npm-"] }],
          },
        },
        {
          name: "report",
          sandboxId: "app-7",
          needs: ["test"],
          when: "always",
          allowFailure: false,
          job: { ...defaults, command: "./report.sh" },
        },
      ],
    });
  });

  it("lists the steps whose stdin comes from a file, and refuses stdinFile beside stdin or job", () => {
    const pipeline = read(
      [
        "jobs:",
        "  - { name: a, sandbox: x, command: 'true' }",
        "  - { name: b, sandbox: x, command: 'wc -c', stdinFile: data/in.txt }",
      ].join("\n"),
    );
    expect("stdinFiles" in pipeline && pipeline.stdinFiles).toEqual([{ step: 1, path: "data/in.txt" }]);

    const wrong = read(
      [
        "jobs:",
        "  - { name: a, sandbox: x, command: cat, stdin: text, stdinFile: in.txt }",
        "  - { name: b, sandbox: x, stdinFile: in.txt, job: { type: run, command: cat } }",
      ].join("\n"),
    );
    expect("problems" in wrong && wrong.problems).toEqual([
      "jobs.0.stdinFile: give either stdin or stdinFile, not both",
      "jobs.1.stdinFile: stdinFile goes with command; with job, give stdin inside job",
    ]);
  });

  it("names the path of what the API's schema refuses, its rules across fields included", () => {
    const pipeline = read(
      [
        "jobs:",
        "  - { name: a, sandbox: x, command: 'true', secrets: [TOKEN], env: { TOKEN: x } }",
        "  - { name: b, sandbox: x, command: 'true', timeout: 10m, retries: 1 }",
        "  - { name: c, sandbox: x, command: 'true', when: sometimes, matrix: { 1x: [a] } }",
        "  - { name: d, sandbox: x, command: 'true', cache: [{ key: 'a b', paths: [node_modules] }], allowFailure: maybe }",
        "  - { name: e, sandbox: x, cwd: /workspace/src, job: { type: run, command: 'true' } }",
        "  - { name: f, sandbox: x, job: { type: run, command: 'true', timeoutMs: 0 } }",
        "  - { name: g, sandbox: x, command: '  ' }",
      ].join("\n"),
    );
    const problems = "problems" in pipeline ? pipeline.problems : [];
    expect(problems).toHaveLength(9);
    expect(problems).toEqual(
      expect.arrayContaining([
        "jobs.0.secrets: A secret's name is also in env; a variable comes from one or the other",
        expect.stringMatching(/^jobs\.1\.retries: \(retries \+ 1\) \* timeoutMs is at most 840000/),
        'jobs.2.when: Invalid option: expected one of "on_success"|"always"|"on_failure"',
        'jobs.2.matrix.1x: Matrix variables are env var names; "1x" is not',
        "jobs.3.allowFailure: Invalid input: expected boolean, received string",
        expect.stringMatching(/^jobs\.3\.cache\.0\.key: Cache keys are letters/),
        "jobs.4.cwd: with job, write cwd inside job",
        "jobs.5.job.timeoutMs: Too small: expected number to be >=1",
        "jobs.6.command: command must not be blank",
      ]),
    );
  });
});

describe("the jobs a name picks in `pipeline logs`", () => {
  /** A batch as the API answers it, its entries expanded by the API's own matrix code. */
  function batchOf(entries: unknown[]): BatchView {
    const expanded = expandMatrix(entries.map((entry) => BatchEntry.parse(entry)));
    const jobs = expanded.map((entry, index) =>
      JobView.parse({
        ...newJobRecord(
          `01M8XCTE3H9P0MJB98KB51EK${String(index).padStart(2, "0")}`,
          { tenant: "t", sandboxId: entry.sandboxId },
          entry.job,
          0,
          60,
          {
            batchId: "01M8XCTE3H9P0MJB98KB51EKWK",
            name: entry.name ?? null,
            needs: [],
          },
        ),
        stdout: null,
        stderr: null,
        artifacts: [],
        artifactIndex: null,
        archiveUrl: "https://example.test/archive",
        urlsExpireAt: null,
      }),
    );
    return { batchId: "01M8XCTE3H9P0MJB98KB51EKWK", status: "running", createdAt: new Date(0).toISOString(), jobs };
  }
  const run = (command: string) => ({ type: "run", command });

  it("picks a job by name or ID, or every copy of a matrix job by the matrix job's name", () => {
    const batch = batchOf([
      { name: "test", sandboxId: "s", matrix: { NODE: ["18", "20"], OS: ["linux"] }, job: run("npm test") },
      { name: "test-unit", sandboxId: "s", job: run("npm run unit") },
      { name: "build", sandboxId: "s", job: run("make") },
      { name: "build-docs", sandboxId: "s", job: run("make docs") },
    ]);
    const names = (name: string) => jobsNamed(batch, name).map((job) => job.name);
    expect(names("build")).toEqual(["build"]);
    expect(names("test-18-linux")).toEqual(["test-18-linux"]);
    expect(names(batch.jobs.find((job) => job.name === "build-docs")?.id ?? "")).toEqual(["build-docs"]);
    // test-unit begins like a copy but is a job of its own: the copies are told apart from it.
    expect(() => names("test")).toThrow(/jobs named test-\.\.\. are not copies of one matrix job/);
    const plain = batchOf([
      { name: "test", sandboxId: "s", matrix: { NODE: ["18", "20"] }, job: run("npm test") },
      { name: "lint", sandboxId: "s", job: run("npm run lint") },
    ]);
    expect(jobsNamed(plain, "test").map((job) => job.name)).toEqual(["test-18", "test-20"]);
    expect(() => jobsNamed(plain, "deploy")).toThrow("has no job deploy; its jobs: test-18, test-20, lint");
  });
});
