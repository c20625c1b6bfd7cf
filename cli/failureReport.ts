/**
 * Why a pipeline failed, for its summary: a failed job's failing tests when it left a JUnit XML
 * report among its artifacts, otherwise the lines around the first error-looking line of its
 * output and then the output's tail; a skipped job with the needs that did not succeed. A failure
 * that `allowFailure` lets pass is explained too, headed as allowed. Under GitHub Actions each
 * failure also becomes an `::error` annotation (`::warning` when allowed).
 */
import type { ArtifactSandboxClient, BatchView, JobView } from "../client";
import { errorAnnotation, inert } from "./githubActions";
import { type FailedTest, failedTests, locationIn, looksLikeJUnit } from "./junit";
import { failureAllowed, jobLine, notNeeded, plural } from "./output";

/** How much of each stream's end is searched for an error and shown. */
const TAIL_BYTES = 64 * 1024;
const TAIL_LINES = 15;
const CONTEXT_BEFORE = 3;
const CONTEXT_AFTER = 6;
const MAX_TESTS_SHOWN = 20;
/** Reports larger than this are left unread: the summary is no place for a huge download. */
const MAX_REPORT_BYTES = 8 * 1024 * 1024;
const MAX_REPORTS = 10;

// A line that reads like the cause of a failure, unless it says there was none ("0 errors").
const ERROR_LINE = /\b(error|errors|failed|failure|fatal|exception|panic|traceback|not ok)\b|ERR!|\u2716|\u2717/i;
const NO_ERROR_LINE = /\b(0|no|zero) (errors?|failures?|failed)\b/i;

export interface ReportOptions {
  /** Emit `::error` annotations and keep workflow commands off in printed output (GitHub Actions). */
  github: boolean;
}

/**
 * The summary's part about every job that did not succeed, as text; a job skipped because its
 * `when` did not hold (an `on_failure` job when nothing failed) is no failure and not listed.
 */
export async function explainFailures(client: ArtifactSandboxClient, batch: BatchView, options: ReportOptions): Promise<string> {
  const byId = new Map(batch.jobs.map((job) => [job.id, job]));
  let text = "";
  for (const job of batch.jobs) {
    if (job.status === "succeeded" || notNeeded(job)) continue;
    if (job.status === "skipped") {
      // The needs that caused the skip: an allowed failure causes none.
      const needs = job.needs
        .map((id) => byId.get(id))
        .filter((need): need is JobView => need !== undefined && need.status !== "succeeded" && !failureAllowed(need));
      const because = needs.map((need) => `${need.name ?? need.id} (${need.status})`).join(", ");
      text += `\nSKIPPED ${job.name ?? job.id} (${job.sandboxId}): ${because ? `needs ${because}` : (job.error?.message ?? "not run")}\n`;
      continue;
    }
    const level = failureAllowed(job) ? "warning" : "error";
    text += `\n${level === "warning" ? "ALLOWED FAILURE" : "FAILED"} ${jobLine(job)}\n`;
    const tests = await failingTestsOf(client, job);
    text += tests.length > 0 ? describeTests(job, tests, { ...options, level }) : await describeOutput(client, job, { ...options, level });
  }
  return text;
}

/** How a job's failure is annotated under GitHub Actions: a warning when its batch lets it pass. */
type Explained = ReportOptions & { level: "error" | "warning" };

async function failingTestsOf(client: ArtifactSandboxClient, job: JobView): Promise<FailedTest[]> {
  const reports = job.artifacts.filter((artifact) => artifact.path.endsWith(".xml") && artifact.size <= MAX_REPORT_BYTES);
  const failed: FailedTest[] = [];
  for (const report of reports.slice(0, MAX_REPORTS)) {
    const xml = await client
      .download(report.url)
      .then((body) => new Response(body).text())
      .catch(() => "");
    if (looksLikeJUnit(xml)) failed.push(...(failedTests(xml) ?? []));
  }
  return failed;
}

/** A path from the sandbox as the repository knows it: relative to the job's cwd when inside it. */
function relativeToJob(job: JobView, file: string): string {
  const cwd = job.request.type === "run" ? job.request.cwd : "/workspace";
  return file.startsWith(`${cwd}/`) ? file.slice(cwd.length + 1) : file.replace(/^\.\//, "");
}

function describeTests(job: JobView, tests: FailedTest[], options: Explained): string {
  let text = `  ${plural(tests.length, "failing test")}:\n`;
  let annotations = "";
  for (const test of tests.slice(0, MAX_TESTS_SHOWN)) {
    const file = test.file ? relativeToJob(job, test.file) : undefined;
    text += `  - ${test.name}\n`;
    if (test.message) text += `      ${test.message}\n`;
    if (file) text += `      at ${file}${test.line ? `:${test.line}` : ""}\n`;
    if (options.github) {
      const message = [test.message, test.details].filter(Boolean).join("\n").slice(0, 4000);
      annotations += errorAnnotation({
        level: options.level,
        title: `${job.name ?? job.id}: ${test.name}`,
        message,
        file,
        line: test.line,
      });
    }
  }
  if (tests.length > MAX_TESTS_SHOWN) text += `  ... and ${plural(tests.length - MAX_TESTS_SHOWN, "more failing test")}\n`;
  return (options.github ? inert(text) : text) + annotations;
}

async function describeOutput(client: ArtifactSandboxClient, job: JobView, options: Explained): Promise<string> {
  let text = "";
  let firstError: { line: string; context: string[] } | undefined;
  for (const stream of ["stderr", "stdout"] as const) {
    const ref = job[stream];
    if (!ref?.size) continue;
    const tail = await client.outputTail(job.id, stream, TAIL_BYTES).catch(() => "");
    const lines = wholeLines(tail, ref.size > TAIL_BYTES);
    if (lines.length === 0) continue;
    const excerpt = excerptOf(lines);
    if (excerpt.around) {
      firstError ??= { line: lines[excerpt.around.errorAt] ?? "", context: excerpt.around.lines };
      text += `  ${stream}, around its first error:\n${indent(excerpt.around.lines)}`;
    }
    if (excerpt.tail.length > 0)
      text += `  ${excerpt.around ? "then its last lines" : `last lines of ${stream}`}:\n${indent(excerpt.tail)}`;
  }
  if (!options.github) return text;
  // The error line's own file:line first, else one the lines around it name (a stack trace's).
  const location = firstError ? (locationIn(firstError.line) ?? locationIn(firstError.context.join("\n"))) : undefined;
  const note = errorAnnotation({
    level: options.level,
    title: `${job.name ?? job.id} ${job.status}`,
    message: firstError?.line.trim() || job.error?.message || job.status,
    file: location ? relativeToJob(job, location.file) : undefined,
    line: location?.line,
  });
  return inert(text) + note;
}

/** The lines of an output's tail; the first one is cut when the tail began mid-line. */
function wholeLines(tail: string, cut: boolean): string[] {
  const lines = tail.replace(/\n$/, "").split("\n");
  if (cut) lines.shift();
  return tail.trim() === "" ? [] : lines.map((line) => line.replace(/\r$/, ""));
}

/** The lines around the first error-looking line (if any), and the tail after them. */
export function excerptOf(lines: string[]): { around?: { lines: string[]; errorAt: number }; tail: string[] } {
  const errorAt = lines.findIndex((line) => ERROR_LINE.test(line) && !NO_ERROR_LINE.test(line));
  const tailStart = Math.max(0, lines.length - TAIL_LINES);
  if (errorAt < 0) return { tail: lines.slice(tailStart) };
  const start = Math.max(0, errorAt - CONTEXT_BEFORE);
  const end = Math.min(lines.length, errorAt + CONTEXT_AFTER + 1);
  // The tail repeats nothing the excerpt showed.
  return { around: { lines: lines.slice(start, end), errorAt }, tail: lines.slice(Math.max(end, tailStart)) };
}

const indent = (lines: string[]) => `${lines.map((line) => `    ${line}`).join("\n")}\n`;
