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

/** The directory a path is in ("" for the directory unpacked into). */
function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "" : path.slice(0, slash);
}

/** What a directory path finds going down from the directory: every part a real directory, a part missing (nothing below exists), or why not. */
type Chain = "present" | "missing" | "symlink" | "not-dir";

/** Each directory path's chain, worked out once (a tree shares its directories, and paths may be 2,000 parts deep). */
function chains(of: StandingOf): (path: string) => Chain {
  const memo = new Map<string, Chain>();
  const chainOf = (path: string): Chain => {
    if (path === "") return "present";
    const known = memo.get(path);
    if (known) return known;
    const above = chainOf(parentOf(path));
    let chain: Chain = above;
    if (above === "present") {
      const here = standing(of, path);
      chain = here === "directory" ? "present" : here === "symlink" ? "symlink" : here === "other" ? "not-dir" : "missing";
    }
    memo.set(path, chain);
    return chain;
  };
  return chainOf;
}

/** The directory a member needs: itself for a directory entry (tar would set the mode of whatever is there), else its parent. */
function neededDirectory(member: PlannedMember): string {
  return member.kind === "directory" ? member.path : parentOf(member.path);
}

/**
 * The member's directories: each that exists must be a real directory; below one that is
 * missing nothing exists. A file or link finds no directory in its own place.
 */
function pathRefusal(member: PlannedMember, of: StandingOf, chainOf: (path: string) => Chain): RefusalCode | undefined {
  const chain = chainOf(neededDirectory(member));
  if (chain === "symlink" || chain === "not-dir") return chain;
  if (chain === "present" && member.kind !== "directory" && member.path !== "" && standing(of, member.path) === "directory")
    return "is-dir";
  return undefined;
}

/** A symlink's target stepping above the directory. */
const OUTSIDE = Symbol("outside");

/** Each place a symlink's target passes, read from its directory as text, until it would leave the directory (then `outside`). */
function* targetSteps(member: PlannedMember): Generator<string | typeof OUTSIDE> {
  let at = parentOf(member.path);
  for (const segment of member.target.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (at === "") {
        yield OUTSIDE;
        return;
      }
      at = parentOf(at);
      continue;
    }
    at = at === "" ? segment : `${at}/${segment}`;
    yield at;
  }
}
/** Where a symlink's target leads, through no symlink of the sandbox and never above the directory. */
function targetRefusal(member: PlannedMember, of: StandingOf): RefusalCode | undefined {
  for (const step of targetSteps(member)) {
    if (step === OUTSIDE) return "outside";
    if (standing(of, step) === "symlink") return "symlink";
  }
  return undefined;
}

/** The paths whose standing the first round asks: every directory a member needs, and every step of a symlink's target. */
export function firstQuestions(members: readonly PlannedMember[]): string[] {
  const asked = new Set<string>();
  for (const member of members) {
    // Up from the directory it needs, until a directory asked for already (its own are too).
    for (let path = neededDirectory(member); path !== "" && !asked.has(path); path = parentOf(path)) asked.add(path);
    if (member.kind !== "symlink") continue;
    for (const step of targetSteps(member)) if (step !== OUTSIDE) asked.add(step);
  }
  return [...asked];
}

/** The paths the second round asks: a file's or link's own place, when every directory above it exists. */
export function secondQuestions(members: readonly PlannedMember[], of: StandingOf): string[] {
  const chainOf = chains(of);
  const asked = new Set<string>();
  for (const member of members) {
    if (member.kind === "directory" || member.path === "" || of(member.path) !== undefined) continue;
    if (chainOf(parentOf(member.path)) === "present") asked.add(member.path);
  }
  return [...asked];
}

/** The members refused, by their index among `members`, with the reason; entries are judged in order (a hard link needs its target unpacked). */
export function judgeMembers(members: readonly PlannedMember[], of: StandingOf): Map<number, string> {
  const refused = new Map<number, string>();
  const unpacked = new Set<string>();
  const chainOf = chains(of);
  for (const [index, member] of members.entries()) {
    let code = pathRefusal(member, of, chainOf);
    if (!code && member.kind === "symlink") code = targetRefusal(member, of);
    if (!code && member.kind === "link" && !unpacked.has(member.target)) code = "link-target";
    if (code) refused.set(index, SANDBOX_REFUSALS[code]);
    else unpacked.add(member.path);
  }
  return refused;
}
