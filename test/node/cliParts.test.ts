/**
 * The CLI's text handling on its own, without a stack: JUnit reports as tap, pytest, Jest and Go
 * write them, the excerpt around a log's first error, durations, placeholders, and GitHub
 * Actions' escaping of workflow commands.
 */
import { describe, expect, it } from "vitest";
import { parseDuration } from "../../cli/duration";
import { excerptOf } from "../../cli/failureReport";
import { errorAnnotation } from "../../cli/githubActions";
import { interpolate, runIdFrom } from "../../cli/interpolate";
import { failedTests } from "../../cli/junit";

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
