/**
 * An uploaded .tar.gz judged from its headers alone (streamed from R2, every body skipped), entry
 * by entry, before anything reaches the sandbox: an absolute name, a name over 4096 bytes, a `..`
 * segment, a path through a symlink or a file of the archive, a symlink whose target leaves the
 * directory (as text) or runs through another of the archive's symlinks, a hard link to a symlink
 * or to an entry not unpacked before it, a device or a FIFO is refused. What the sandbox already holds is checked there (extractArchive.ts).
 */
import { createTarDecoder, type TarHeader } from "modern-tar";
import type { Extracted } from "../schemas/job";

export interface PlannedMember {
  /** Its place among the archive's entries. */
  entry: number;
  /** The name as the archive's headers give it. */
  name: string;
  /** The name without `.` or empty segments: the path below the directory ("" for the directory itself). */
  path: string;
  kind: "directory" | "file" | "symlink" | "link";
  /** A symlink's target as written; a hard link's, as the path of the entry it names. */
  target: string;
}

export interface ExtractionPlan {
  members: PlannedMember[];
  /** Each entry's header as judged, to be sure a second read of the archive is the same one. */
  fingerprints: string[];
  /** Entries in the archive. */
  entries: number;
  /** Entries refused from their headers alone. */
  refused: Extracted["refused"];
}

type EntryHeader = Pick<TarHeader, "name" | "type" | "linkname" | "size">;

/**
 * What one upload may hold: every entry is judged, and remembered until it is unpacked, in the
 * coordinator's memory (128 MB deployed), so a small .tar.gz of countless headers cannot fill it.
 */
export const MAX_ARCHIVE_ENTRIES = 100_000;
/** The entries' names and link targets together, in bytes, for the same reason. */
export const MAX_ARCHIVE_NAME_BYTES = 8 * 1024 * 1024;

/** An archive over those limits: read to the point where it went over, never judged. */
export class ArchiveTooLargeError extends Error {
  override readonly name = "ArchiveTooLargeError";
}

const utf8 = new TextEncoder();

/** What identifies an entry's header: a second read must find the same in the same place. */
export function headerFingerprint(header: EntryHeader): string {
  return JSON.stringify([header.name, header.type ?? "file", header.linkname ?? "", header.size]);
}

/**
 * Both reads of the archive go through this decoder: strict, so a header that does not add up
 * (its checksum, a number) makes the archive unreadable rather than read two ways.
 */
export function decodeTarGz(archive: ReadableStream<Uint8Array>) {
  return archive.pipeThrough(new DecompressionStream("gzip")).pipeThrough(createTarDecoder({ strict: true }));
}

function segmentsOf(path: string): string[] {
  return path.split("/").filter((segment) => segment !== "" && segment !== ".");
}

/** A path's bytes at most (Linux's PATH_MAX): tar could not make a longer one. */
const MAX_NAME_BYTES = 4096;

/** What the archive has planned so far: its symlinks, its other entries that are no directory, and every entry it unpacks. */
interface Planned {
  links: Set<string>;
  notDirectories: Set<string>;
  unpacked: Set<string>;
}

/** Why a path whose parent is `parent` cannot go where it goes in the archive's own tree, or undefined. */
function throughArchive(parent: string[], planned: Planned): string | undefined {
  let prefix = "";
  for (const segment of parent) {
    prefix = prefix === "" ? segment : `${prefix}/${segment}`;
    if (planned.links.has(prefix)) return "goes through a symlink in the archive";
    if (planned.notDirectories.has(prefix)) return "goes through an entry of the archive that is not a directory";
  }
  return undefined;
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
  if (utf8.encode(header.name).byteLength > MAX_NAME_BYTES) return `name longer than ${MAX_NAME_BYTES} bytes`;
  const segments = segmentsOf(header.name);
  if (segments.includes("..")) return "path contains '..'";
  const type = header.type ?? "file";
  if (type !== "file" && type !== "directory" && type !== "symlink" && type !== "link") return `unsupported entry type ${type}`;
  if (segments.length === 0 && type !== "directory") return "no name";
  // tar makes a symlink whose target holds `..` only at the end, and one without may replace
  // what is there: nothing is written through one.
  const through = throughArchive(segments.slice(0, -1), planned);
  if (through) return through;
  const target = header.linkname ?? "";
  if (type === "symlink") return symlinkRefusal(segments.slice(0, -1), target, planned);
  if (type === "link") {
    const named = segmentsOf(target);
    if (target.startsWith("/") || named.includes("..")) return "hard link outside the directory";
    if (!planned.unpacked.has(named.join("/"))) return "hard link to an entry not unpacked before it";
    // A hard link to a symlink is a second symlink whose target is read from elsewhere.
    if (planned.links.has(named.join("/"))) return "hard link to a symlink";
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
  let nameBytes = 0;
  for await (const entry of decodeTarGz(archive)) {
    await entry.body.cancel();
    nameBytes += utf8.encode(entry.header.name).byteLength + utf8.encode(entry.header.linkname ?? "").byteLength;
    if (headers.length === MAX_ARCHIVE_ENTRIES) {
      throw new ArchiveTooLargeError(
        `The archive holds more than ${MAX_ARCHIVE_ENTRIES.toLocaleString("en-US")} entries; leave out what the sandbox can make (node_modules, build output) or split it into several uploads`,
      );
    }
    if (nameBytes > MAX_ARCHIVE_NAME_BYTES) {
      throw new ArchiveTooLargeError(
        `The archive's entry names add up to more than ${MAX_ARCHIVE_NAME_BYTES / 1024 / 1024} MiB; leave out what the sandbox can make (node_modules, build output) or split it into several uploads`,
      );
    }
    headers.push({ name: entry.header.name, type: entry.header.type, linkname: entry.header.linkname, size: entry.header.size });
  }
  const seen = new Map<string, number>();
  for (const header of headers) {
    const path = segmentsOf(header.name).join("/");
    seen.set(path, (seen.get(path) ?? 0) + 1);
  }
  const planned: Planned = { links: new Set(), notDirectories: new Set(), unpacked: new Set() };
  const members: PlannedMember[] = [];
  const refused: Extracted["refused"] = [];
  for (const [entry, header] of headers.entries()) {
    const path = segmentsOf(header.name).join("/");
    const reason = (seen.get(path) ?? 0) > 1 && path !== "" ? "appears more than once in the archive" : refusal(header, planned);
    if (reason) {
      refused.push({ path: header.name, reason });
      continue;
    }
    const kind = header.type === "directory" || header.type === "symlink" || header.type === "link" ? header.type : "file";
    const target = kind === "link" ? segmentsOf(header.linkname ?? "").join("/") : (header.linkname ?? "");
    members.push({ entry, name: header.name, path, kind, target });
    planned.unpacked.add(path);
    if (kind === "symlink") planned.links.add(path);
    else if (kind !== "directory") planned.notDirectories.add(path);
  }
  return { members, fingerprints: headers.map(headerFingerprint), entries: headers.length, refused };
}
