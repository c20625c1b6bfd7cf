/**
 * Judges an upload's planned members against what the sandbox already holds below the target
 * directory, from what stands at each path (asked of the sandbox in rounds by extractArchive.ts,
 * a letter per path, so a tree of 50,000 files costs one cheap probe, not a shell loop per
 * entry). No entry goes through a symlink already in the sandbox, wherever it leads: tar runs
 * after the check, and the archive may re-point a link that another one resolves through. A
 * path that needs a directory finds one or nothing; a file or link finds no directory where it
 * goes; a symlink's target, read as the kernel would, goes through no symlink of the sandbox and
 * never above the directory; a hard link names an entry that is unpacked.
 */
import type { PlannedMember } from "./archivePlan";

/** What stands at a path below the directory before anything is unpacked. */
export type Standing = "symlink" | "directory" | "other" | "missing";

/** Why the judgement refused a member, by code. */
export const SANDBOX_REFUSALS = {
  symlink: "goes through a symlink already in the sandbox",
  outside: "symlink points outside the directory",
  "not-dir": "something in the sandbox that is not a directory stands where it needs one",
  "is-dir": "a directory in the sandbox stands where the archive has a file or link",
  "link-target": "hard link to an entry that was not unpacked",
} as const;

type RefusalCode = keyof typeof SANDBOX_REFUSALS;

/** A path's standing, or undefined when it was never asked (the caller asks in rounds). */
export type StandingOf = (path: string) => Standing | undefined;

class UnaskedPath extends Error {
  override readonly name = "UnaskedPath";
  constructor(readonly path: string) {
    super(`The sandbox was not asked about ${path}`);
  }
}

function standing(of: StandingOf, path: string): Standing {
  const known = of(path);
  if (known === undefined) throw new UnaskedPath(path);
  return known;
}

function segmentsOf(path: string): string[] {
  return path === "" ? [] : path.split("/");
}

/**
 * The member's own path and the directories above it: each that exists must be a real
 * directory (its last too for a directory entry, since tar would set the mode of whatever is
 * there); below one that is missing nothing exists. A file or link finds no directory in its place.
 */
function pathRefusal(member: PlannedMember, of: StandingOf): RefusalCode | undefined {
  const parts = segmentsOf(member.path);
  const walked = member.kind === "directory" ? parts.length : parts.length - 1;
  for (let i = 0; i < walked; i++) {
    const here = standing(of, parts.slice(0, i + 1).join("/"));
    if (here === "symlink") return "symlink";
    if (here === "other") return "not-dir";
    if (here === "missing") return undefined;
  }
  if (member.kind !== "directory" && member.path !== "" && standing(of, member.path) === "directory") return "is-dir";
  return undefined;
}

/** Where a symlink's target leads, read from its directory as text, through no symlink of the sandbox. */
function targetRefusal(member: PlannedMember, of: StandingOf): RefusalCode | undefined {
  const at = segmentsOf(member.path).slice(0, -1);
  for (const segment of member.target.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (at.length === 0) return "outside";
      at.pop();
      continue;
    }
    at.push(segment);
    if (standing(of, at.join("/")) === "symlink") return "symlink";
  }
  return undefined;
}

/** The paths whose standing the first round asks: every directory a member needs, and every step of a symlink's target. */
export function firstQuestions(members: readonly PlannedMember[]): string[] {
  const asked = new Set<string>();
  for (const member of members) {
    const parts = segmentsOf(member.path);
    const walked = member.kind === "directory" ? parts.length : parts.length - 1;
    for (let i = 1; i <= walked; i++) asked.add(parts.slice(0, i).join("/"));
    if (member.kind !== "symlink") continue;
    const at = parts.slice(0, -1);
    for (const segment of member.target.split("/")) {
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (at.length === 0) break;
        at.pop();
        continue;
      }
      at.push(segment);
      asked.add(at.join("/"));
    }
  }
  return [...asked];
}

/** The paths the second round asks: a file's or link's own place, when every directory above it exists. */
export function secondQuestions(members: readonly PlannedMember[], of: StandingOf): string[] {
  const asked = new Set<string>();
  for (const member of members) {
    if (member.kind === "directory" || member.path === "" || of(member.path) !== undefined) continue;
    const parts = segmentsOf(member.path);
    let above = true;
    for (let i = 1; i < parts.length && above; i++) above = of(parts.slice(0, i).join("/")) === "directory";
    if (above) asked.add(member.path);
  }
  return [...asked];
}

/** The members refused, by their index among `members`, with the reason; entries are judged in order (a hard link needs its target unpacked). */
export function judgeMembers(members: readonly PlannedMember[], of: StandingOf): Map<number, string> {
  const refused = new Map<number, string>();
  const unpacked = new Set<string>();
  for (const [index, member] of members.entries()) {
    let code = pathRefusal(member, of);
    if (!code && member.kind === "symlink") code = targetRefusal(member, of);
    if (!code && member.kind === "link" && !unpacked.has(member.target)) code = "link-target";
    if (code) refused.set(index, SANDBOX_REFUSALS[code]);
    else unpacked.add(member.path);
  }
  return refused;
}
