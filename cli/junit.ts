/**
 * The failing tests of a JUnit XML report (what tap, Jest, Vitest, pytest and go-junit-report
 * write), read with fast-xml-parser: each failed or errored test case with its message and, where
 * the report or its stack trace says, the file and line.
 */
import { XMLParser } from "fast-xml-parser";
import { z } from "zod";

export interface FailedTest {
  /** The suite (or class) and the test's name. */
  name: string;
  message: string;
  /** The failure's text: an assertion's diff, a stack trace. */
  details: string;
  file?: string;
  line?: number;
}

// Elements that may repeat are always arrays, so one repeated or single element reads the same.
const REPEATED = new Set(["testsuite", "testcase", "failure", "error"]);
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  textNodeName: "#text",
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => REPEATED.has(name),
});

const Problem = z.union([
  z.string(),
  z.looseObject({ "@_message": z.string().optional(), "@_type": z.string().optional(), "#text": z.string().optional() }),
]);
const TestCase = z.looseObject({
  "@_name": z.string().optional(),
  "@_classname": z.string().optional(),
  "@_file": z.string().optional(),
  "@_line": z.string().optional(),
  failure: z.array(Problem).optional(),
  error: z.array(Problem).optional(),
});
const TestSuite = z.looseObject({
  "@_name": z.string().optional(),
  "@_file": z.string().optional(),
  testcase: z.array(z.unknown()).optional(),
  testsuite: z.array(z.unknown()).optional(),
});
const Report = z.looseObject({
  testsuites: z.union([z.looseObject({ testsuite: z.array(z.unknown()).optional() }), z.string()]).optional(),
  testsuite: z.array(z.unknown()).optional(),
});

/** Whether a text looks like a JUnit report at all (before parsing it). */
export function looksLikeJUnit(text: string): boolean {
  return /<testsuites?[\s>]/.test(text.slice(0, 4096));
}

/** The failing tests of a report; an empty list for a report without failures, undefined for text that is not one. */
export function failedTests(xml: string): FailedTest[] | undefined {
  let document: unknown;
  try {
    document = parser.parse(xml, true);
  } catch {
    return undefined;
  }
  const report = Report.safeParse(document);
  if (!report.success) return undefined;
  const roots = [
    ...(typeof report.data.testsuites === "object" ? (report.data.testsuites.testsuite ?? []) : []),
    ...(report.data.testsuite ?? []),
  ];
  if (report.data.testsuites === undefined && report.data.testsuite === undefined) return undefined;
  const failed: FailedTest[] = [];
  const visit = (raw: unknown, depth: number) => {
    const suite = TestSuite.safeParse(raw);
    // Suites nest (pytest, tap subtests); a report deeper than this is not a sane one.
    if (!suite.success || depth > 32) return;
    for (const child of suite.data.testsuite ?? []) visit(child, depth + 1);
    for (const rawCase of suite.data.testcase ?? []) {
      const testCase = TestCase.safeParse(rawCase);
      if (!testCase.success) continue;
      const problem = testCase.data.failure?.[0] ?? testCase.data.error?.[0];
      if (problem === undefined) continue;
      failed.push(describe(testCase.data, problem, suite.data["@_file"]));
    }
  };
  for (const root of roots) visit(root, 0);
  return failed;
}

function describe(testCase: z.infer<typeof TestCase>, problem: z.infer<typeof Problem>, suiteFile: string | undefined): FailedTest {
  const message = typeof problem === "string" ? "" : (problem["@_message"] ?? problem["@_type"] ?? "");
  const details = (typeof problem === "string" ? problem : (problem["#text"] ?? "")).trim();
  const name = [testCase["@_classname"], testCase["@_name"]].filter(Boolean).join(" > ") || "(unnamed test)";
  const declared = testCase["@_file"] ?? suiteFile;
  const declaredLine = testCase["@_line"] === undefined ? undefined : Number.parseInt(testCase["@_line"], 10);
  // A stack trace names the assertion's line more precisely than the test's declaration.
  const traced = locationIn(`${details}\n${message}`);
  const location = traced ?? (declared ? { file: declared, line: Number.isSafeInteger(declaredLine) ? declaredLine : undefined } : {});
  return { name, message: message || firstLine(details), details, ...location };
}

const firstLine = (text: string) => text.split("\n", 1)[0]?.trim() ?? "";

// `path/to/file.ext:24` or `:24:7`, as stack traces, tap, pytest and go print them.
const LOCATION = /(?:^|[\s(@])((?:\.{1,2}\/|\/)?[\w@.+-][\w@.+/-]*\.[A-Za-z]{1,6}):(\d+)(?::\d+)?/gm;

/** The first `file:line` in a text that is not a dependency's or the runtime's own. */
export function locationIn(text: string): { file: string; line: number } | undefined {
  for (const match of text.matchAll(LOCATION)) {
    const [, file, line] = match;
    if (!file || !line || file.includes("node_modules/") || file.startsWith("internal/")) continue;
    return { file, line: Number(line) };
  }
  return undefined;
}
