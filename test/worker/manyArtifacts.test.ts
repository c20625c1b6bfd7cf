/**
 * A job of 10,000 artifact files, end to end on the real local stack under the strict R2 wrapper
 * and the operation budget: every file listed (a page at a time), files downloaded byte-exact
 * with their mode and SHA-256, the archive holding all of them, and a downstream job's inputs
 * receiving them, whole or a scattered few.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ArtifactPageView, type JobView } from "../../schemas/job";
import { api, runJob, sandboxClient, sha256Hex, uniqueSandbox } from "./client";
import { TEST_TENANT } from "./support/jobs";
import { readTarGz } from "./support/tarReader";

const GENERATED = 9_998;
const AWKWARD = "odd/spaces & 'quotes' ünï #%.txt";
const SCRIPT = "bin/run.sh";
const generatedPath = (i: number) => `d${i % 10}/e${i % 7}/f${i}.txt`;

/** Every path the job writes: 9,998 numbered files in nested directories, a script and an awkward name. */
const EXPECTED_PATHS = [...Array.from({ length: GENERATED }, (_, i) => generatedPath(i + 1)), SCRIPT, AWKWARD].sort();

function pathOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
}

async function listAll(job: JobView) {
  const listUrl = job.artifactIndex?.listUrl;
  if (!listUrl) throw new Error("the job has no artifact index");
  const artifacts: ArtifactPageView["artifacts"] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const response = await api(`${pathOf(listUrl)}${cursor === null ? "" : `?cursor=${cursor}`}`);
    expect(response.status).toBe(200);
    const page = ArtifactPageView.parse(await response.json());
    expect(page.files).toBe(10_000);
    artifacts.push(...page.artifacts);
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== null);
  return { artifacts, pages };
}

describe("10,000 artifact files", () => {
  it("lists, serves, archives and hands on every one of them", { timeout: 240_000 }, async () => {
    const job = await runJob(uniqueSandbox("many-files"), {
      type: "run",
      cwd: "/workspace/out",
      command: [
        "mkdir -p d{0..9}/e{0..6} bin odd",
        `for i in $(seq 1 ${GENERATED}); do echo "file $i" > d$((i % 10))/e$((i % 7))/f$i.txt; done`,
        `printf '#!/bin/sh\\necho ran\\n' > ${SCRIPT} && chmod 755 ${SCRIPT}`,
        `printf 'awkward\\n' > "odd/spaces & 'quotes' ünï #%.txt"`,
      ].join(" && "),
      artifacts: ["**"],
      timeoutMs: 120_000,
    });
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
    expect(job.skippedArtifacts).toEqual([]);
    expect(job.artifactIndex).toMatchObject({ files: 10_000 });
    // The record lists the first 200 in path order; the listing has them all.
    expect(job.artifacts.map((artifact) => artifact.path)).toEqual(EXPECTED_PATHS.slice(0, 200));

    const { artifacts, pages } = await listAll(job);
    expect(pages).toBe(10);
    expect(artifacts.map((artifact) => artifact.path)).toEqual(EXPECTED_PATHS);
    expect(job.artifactIndex?.bytes).toBe(artifacts.reduce((sum, artifact) => sum + artifact.size, 0));
    const byPath = new Map(artifacts.map((artifact) => [artifact.path, artifact]));
    // The typed client (and so the CLI's --out) pages through them the same way.
    expect((await sandboxClient.listArtifacts(job)).map((artifact) => artifact.path)).toEqual(EXPECTED_PATHS);

    // A few files, each by its signed URL from the listing: bytes, SHA-256 and mode as written.
    const samples: [string, string, number][] = [
      [SCRIPT, "#!/bin/sh\necho ran\n", 0o755],
      [AWKWARD, "awkward\n", 0o644],
      [generatedPath(1), "file 1\n", 0o644],
      [generatedPath(5_003), "file 5003\n", 0o644],
      [generatedPath(GENERATED), `file ${GENERATED}\n`, 0o644],
    ];
    for (const [path, content, mode] of samples) {
      const artifact = byPath.get(path);
      expect(artifact, path).toMatchObject({ size: new TextEncoder().encode(content).byteLength, mode });
      const response = await api(pathOf(artifact?.url ?? ""));
      expect(response.status, path).toBe(200);
      const bytes = new Uint8Array(await response.arrayBuffer());
      expect(new TextDecoder().decode(bytes)).toBe(content);
      expect(await sha256Hex(bytes)).toBe(artifact?.sha256);
      expect(response.headers.get("etag")).toBe(`"${artifact?.sha256}"`);
    }
    // Several ranges at once are answered with the whole file.
    const several = await api(pathOf(byPath.get(SCRIPT)?.url ?? ""), { headers: { range: "bytes=0-1,4-5" } });
    expect(several.status).toBe(200);
    expect(await several.text()).toBe("#!/bin/sh\necho ran\n");

    // In R2: the attempt's pack and ten index pages, nothing per file.
    const stored = await env.JOB_OUTPUT.list({ prefix: `tenants/${TEST_TENANT}/jobs/${job.id}/attempts/${job.attempts}/` });
    expect(stored.objects.map((object) => object.key.split("/attempts/")[1]).sort()).toEqual(
      [`${job.attempts}/artifacts.pack`, ...Array.from({ length: 10 }, (_, page) => `${job.attempts}/artifacts.index/${page}.json`)].sort(),
    );

    // The archive: all 10,000, each with the listing's size, SHA-256 and mode.
    const archive = await api(pathOf(job.archiveUrl));
    expect(archive.status).toBe(200);
    if (!archive.body) throw new Error("the archive has no body");
    const { entries } = await readTarGz(archive.body);
    expect(entries.map((entry) => entry.name)).toEqual(EXPECTED_PATHS);
    for (const entry of entries) {
      const listed = byPath.get(entry.name);
      expect({ size: entry.size, sha256: entry.sha256, mode: entry.mode }).toEqual({
        size: listed?.size,
        sha256: listed?.sha256,
        mode: listed?.mode,
      });
    }

    // Downstream: all of them as one input, one directory of them (one range of the pack), and
    // files scattered across the pack (more stretches than are read one range each).
    const downstream = await runJob(uniqueSandbox("many-inputs"), {
      type: "run",
      command: [
        "find /workspace/all -type f | wc -l",
        `stat -c %a /workspace/all/${SCRIPT}`,
        `/workspace/all/${SCRIPT}`,
        `cat "/workspace/all/odd/spaces & 'quotes' ünï #%.txt"`,
        `cat /workspace/all/${generatedPath(4_321)}`,
        "find /workspace/one-dir -type f | wc -l",
        "find /workspace/scattered -type f | wc -l",
        `cat /workspace/scattered/${generatedPath(7_777)}`,
        `cd /workspace/all && sha256sum ${generatedPath(9_990)}`,
      ].join(" && "),
      inputs: [
        { from: job.id, artifacts: ["**"], path: "/workspace/all" },
        { from: job.id, artifacts: ["d3/**"], path: "/workspace/one-dir" },
        { from: job.id, artifacts: ["d*/e*/f*7.txt"], path: "/workspace/scattered" },
      ],
      timeoutMs: 60_000,
    });
    expect(downstream.status, JSON.stringify(downstream.error)).toBe("succeeded");
    const oneDir = EXPECTED_PATHS.filter((path) => path.startsWith("d3/")).length;
    const scattered = EXPECTED_PATHS.filter((path) => /^d\d\/e\d\/f\d*7\.txt$/.test(path)).length;
    expect(await (await api(`/v1/jobs/${downstream.id}/stdout`)).text()).toBe(
      [
        "10000",
        "755",
        "ran",
        "awkward",
        "file 4321",
        String(oneDir),
        String(scattered),
        "file 7777",
        `${byPath.get(generatedPath(9_990))?.sha256}  ${generatedPath(9_990)}`,
        "",
      ].join("\n"),
    );
  });
});
