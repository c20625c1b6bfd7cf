/**
 * `run --stdin <file>` and a pipeline step's `stdinFile`: a file's bytes (`-`: this process's own
 * stdin, read to its end) as a run job's `stdin`. The API takes stdin as a JSON string, which the
 * sandbox writes back out as UTF-8, so only UTF-8 text arrives byte for byte; anything else, and a
 * file that would take the request over the API's body limit, is refused here before anything is
 * submitted.
 */
import { createReadStream } from "node:fs";
import { type JobSubmission, jobRequestBody } from "../client";
import { MAX_REQUEST_BODY_BYTES } from "../schemas/job";
import { UsageError } from "./failure";

/** `fatal`: invalid UTF-8 is an error, not U+FFFD; `ignoreBOM`: a leading byte order mark is kept, as any other bytes. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The job's stdin from `source`, a path or `-` for `standardInput`. */
export function readJobStdin(source: string, standardInput: NodeJS.ReadableStream): Promise<string> {
  if (source === "-") return readStdinText(standardInput, "--stdin - (standard input)");
  return readStdinText(createReadStream(source), `--stdin file ${source}`);
}

/** A stream's bytes as a job's stdin, refused (naming `what`) unless it is UTF-8 text within the API's request limit. */
export async function readStdinText(stream: NodeJS.ReadableStream, what: string): Promise<string> {
  const bytes = await readAtMost(stream, MAX_REQUEST_BODY_BYTES).catch((error: unknown) => {
    throw new UsageError(`Cannot read ${what}: ${error instanceof Error ? error.message : error}`);
  });
  if (bytes === undefined) throw new UsageError(`${what} is over ${MAX_REQUEST_BODY_BYTES} bytes, the most the API takes in a request`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UsageError(
      `${what} is not UTF-8 text: the API takes stdin as text, so its bytes would not arrive as they are. ` +
        "For binary input, upload the directory holding it (`artifact-sandbox upload`, or a pipeline file's `upload:`) and redirect from the file in the command",
    );
  }
}

/**
 * Refuses a job whose request body, as `client.submit` sends it, is over the API's limit (it would
 * answer 413), naming the stdin that made it so large. In the body stdin is a JSON string, where a
 * newline, tab, quote or backslash takes 2 bytes and another control character 6.
 */
export function refuseOversizedRequest(job: JobSubmission, source: string): void {
  const bytes = Buffer.byteLength(jobRequestBody(job));
  if (bytes <= MAX_REQUEST_BODY_BYTES) return;
  throw new UsageError(
    `The job's request would be ${bytes} bytes with --stdin ${source}, over the ${MAX_REQUEST_BODY_BYTES} the API takes ` +
      "(stdin travels JSON-escaped: a newline, tab, quote or backslash takes 2 bytes, another control character 6)",
  );
}

/** Everything `stream` holds, or undefined as soon as it is over `limit` bytes (it is then not read further). */
async function readAtMost(stream: NodeJS.ReadableStream, limit: number): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    length += bytes.byteLength;
    if (length > limit) return undefined;
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, length);
}
