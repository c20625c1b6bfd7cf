/**
 * An uploaded .tar.gz judged from its headers alone (streamed from R2, every body skipped), entry
 * by entry, before anything reaches the sandbox: an absolute name, a `..` segment, a path through
 * a symlink of the archive, a symlink whose target leaves the directory (as text) or runs through
 * another of the archive's symlinks, a hard link to an entry not unpacked before it, a device or
 * a FIFO is refused. What the sandbox already holds is checked there (extractArchive.ts).
 */
import { createTarDecoder, type TarHeader } from "modern-tar";
import type { Extracted } from "../schemas/job";

export interface PlannedMember {
  /** The name exactly as in the archive, for tar's list of what to extract. */
  name: string;
  /** The name without `.` or empty segments: the path below the directory ("" for the directory itself). */
  path: string;
  kind: "directory" | "file" | "symlink" | "link";
  /** A symlink's target as written; a hard link's, as the path of the entry it names. */
  target: string;
}

export interface ExtractionPlan {
  members: PlannedMember[];
  /** Entries in the archive. */
  entries: number;
  /** Entries refused from their headers alone. */
  refused: Extracted["refused"];
}

type EntryHeader = Pick<TarHeader, "name" | "type" | "linkname">;

function segmentsOf(path: string): string[] {
  return path.split("/").filter((segment) => segment !== "" && segment !== ".");
}

/** What the archive has planned so far: its symlinks, and every entry it unpacks. */
interface Planned {
  links: Set<string>;
  unpacked: Set<string>;
}

/** Whether some prefix of `segments` (the whole path too, with `whole`) is a symlink the archive makes. */
function throughLink(segments: string[], planned: Planned, whole: boolean): boolean {
  const last = whole ? segments.length : segments.length - 1;
  for (let end = 1; end <= last; end++) {
    if (planned.links.has(segments.slice(0, end).join("/"))) return true;
  }
  return false;
}

/**
 * Why a symlink at `parent` to `target` may not be made, as text: it leaves the directory, or
 * runs through another symlink of the archive (where that leads is the sandbox's to judge).
 */
function symlinkRefusal(parent: string[], target: string, planned: Planned): string | undefined {
  if (target.startsWith("/")) return "symlink to an absolute path";
  if (target === "") return "symlink with an empty target";
  const landed = [...parent];
  for (const segment of segmentsOf(target)) {
    if (segment === "..") {
      if (landed.length === 0) return "symlink points outside the directory";
      landed.pop();
      continue;
    }
    landed.push(segment);
    if (planned.links.has(landed.join("/"))) return "symlink through another symlink in the archive";
  }
  return undefined;
}

/** Why an entry may not be unpacked (judged with the entries planned before it), or undefined. */
function refusal(header: EntryHeader, planned: Planned): string | undefined {
  if (header.name.startsWith("/")) return "absolute path";
  const segments = segmentsOf(header.name);
  if (segments.includes("..")) return "path contains '..'";
  const type = header.type ?? "file";
  if (type !== "file" && type !== "directory" && type !== "symlink" && type !== "link") return `unsupported entry type ${type}`;
  if (segments.length === 0 && type !== "directory") return "no name";
  // tar makes a symlink whose target holds `..` only at the end, and one without may replace
  // what is there: nothing is written through one.
  if (throughLink(segments, planned, false)) return "goes through a symlink in the archive";
  const target = header.linkname ?? "";
  if (type === "symlink") return symlinkRefusal(segments.slice(0, -1), target, planned);
  if (type === "link") {
    const named = segmentsOf(target);
    if (target.startsWith("/") || named.includes("..")) return "hard link outside the directory";
    if (!planned.unpacked.has(named.join("/"))) return "hard link to an entry not unpacked before it";
  }
  return undefined;
}

/**
 * Reads the archive's headers (skipping every body) and decides entry by entry. tar extracts by
 * name, so a path that appears more than once (a file, then a symlink of the same name) is
 * refused in every one of its entries: none of them could be told apart.
 */
export async function planExtraction(archive: ReadableStream<Uint8Array>): Promise<ExtractionPlan> {
  const headers: EntryHeader[] = [];
  const tar = archive.pipeThrough(new DecompressionStream("gzip")).pipeThrough(createTarDecoder());
  for await (const entry of tar) {
    await entry.body.cancel();
    headers.push({ name: entry.header.name, type: entry.header.type, linkname: entry.header.linkname });
  }
  const seen = new Map<string, number>();
  for (const header of headers) {
    const path = segmentsOf(header.name).join("/");
    seen.set(path, (seen.get(path) ?? 0) + 1);
  }
  const planned: Planned = { links: new Set(), unpacked: new Set() };
  const members: PlannedMember[] = [];
  const refused: Extracted["refused"] = [];
  for (const header of headers) {
    const path = segmentsOf(header.name).join("/");
    const reason = (seen.get(path) ?? 0) > 1 && path !== "" ? "appears more than once in the archive" : refusal(header, planned);
    if (reason) {
      refused.push({ path: header.name, reason });
      continue;
    }
    const kind = header.type === "directory" || header.type === "symlink" || header.type === "link" ? header.type : "file";
    const target = kind === "link" ? segmentsOf(header.linkname ?? "").join("/") : (header.linkname ?? "");
    members.push({ name: header.name, path, kind, target });
    planned.unpacked.add(path);
    if (kind === "symlink") planned.links.add(path);
  }
  return { members, entries: headers.length, refused };
}
