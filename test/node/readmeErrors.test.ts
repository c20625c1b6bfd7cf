/** The README's list of error codes is the API's: a code a client may meet is listed, and a listed code exists. */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../api/errors";

async function errorsSection(): Promise<string> {
  const readme = await readFile("README.md", "utf8");
  const start = readme.indexOf("### Errors");
  const end = readme.indexOf("\n## ", start);
  if (start < 0 || end < 0) throw new Error("README.md has no Errors section before the next chapter");
  return readme.slice(start, end);
}

describe("README error codes", () => {
  it("lists exactly the codes the API answers with", async () => {
    const section = await errorsSection();
    // Codes appear in backticks after their status: `409 JOB_FINISHED | SANDBOX_BUSY`.
    const prose = section.replace(/```[\s\S]*?```/g, "");
    const spans = [...prose.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? "");
    const listed = new Set(spans.filter((span) => /^\d{3}\s/.test(span)).flatMap((span) => span.match(/[A-Z][A-Z_]{2,}/g) ?? []));
    expect([...listed].sort()).toEqual(Object.values(ErrorCode).sort());
  });
});
