/**
 * The upload's check against what the sandbox holds, as a pure judgement of what stands at each
 * path: which paths it asks in each round, and what it refuses. (archiveUpload.test.ts runs the
 * same cases end to end in a real sandbox.)
 */
import { describe, expect, it } from "vitest";
import type { PlannedMember } from "../../execution/archivePlan";
import { firstQuestions, judgeMembers, type Standing, secondQuestions } from "../../execution/sandboxJudgement";

function member(kind: PlannedMember["kind"], path: string, target = ""): PlannedMember {
  return { entry: 0, name: path, path, kind, target };
}

/** A sandbox holding `tree` (everything else missing) answering only what was asked. */
function answers(tree: Record<string, Standing>, asked: readonly string[]): (path: string) => Standing | undefined {
  const known = new Map(asked.map((path) => [path, tree[path] ?? "missing"] as const));
  return (path) => known.get(path);
}

describe("judging an upload against the sandbox", () => {
  it("asks for the directories of a tree going into a fresh directory, once each, then only for its top level, and refuses nothing", () => {
    const members = [member("directory", "src"), member("file", "src/a.js"), member("file", "src/b.js"), member("file", "top.txt")];
    const first = firstQuestions(members);
    expect(first).toEqual(["src"]);
    const of = answers({}, first);
    // The directory itself exists: what stands at a top-level name is asked.
    const second = secondQuestions(members, of);
    expect(second).toEqual(["top.txt"]);
    expect(judgeMembers(members, answers({}, [...first, ...second]))).toEqual(new Map());
  });

  it("asks in a second round where files go below directories that exist, and refuses a file where a directory stands", () => {
    const tree: Record<string, Standing> = { src: "directory", "src/a.js": "other", "src/lib": "directory" };
    const members = [member("file", "src/a.js"), member("file", "src/lib"), member("file", "new/x.js")];
    const first = firstQuestions(members);
    expect(first.sort()).toEqual(["new", "src"]);
    const second = secondQuestions(members, answers(tree, first));
    expect(second.sort()).toEqual(["src/a.js", "src/lib"]);
    const refused = judgeMembers(members, answers(tree, [...first, ...second]));
    expect([...refused]).toEqual([[1, "a directory in the sandbox stands where the archive has a file or link"]]);
  });

  it("refuses a way through a sandbox symlink or file, a symlink whose target leaves or crosses one, and a hard link to a refused entry", () => {
    const tree: Record<string, Standing> = { out: "symlink", afile: "other", self: "symlink", dir: "directory" };
    const members = [
      member("file", "out/planted"),
      member("directory", "out"),
      member("file", "afile/y"),
      member("symlink", "dir/up", "../../x"),
      member("symlink", "dir/via", "../self/z"),
      member("symlink", "dir/fine", "../dir/ok"),
      member("link", "hl", "out/planted"),
      member("link", "h2", "dir/fine"),
    ];
    const first = firstQuestions(members);
    const of = answers(tree, [...first, ...secondQuestions(members, answers(tree, first))]);
    expect([...judgeMembers(members, of)]).toEqual([
      [0, "goes through a symlink already in the sandbox"],
      [1, "goes through a symlink already in the sandbox"],
      [2, "something in the sandbox that is not a directory stands where it needs one"],
      [3, "symlink points outside the directory"],
      [4, "goes through a symlink already in the sandbox"],
      [6, "hard link to an entry that was not unpacked"],
    ]);
  });

  it("fails loudly rather than judge a path the sandbox was never asked about", () => {
    const members = [member("file", "src/a.js")];
    expect(() => judgeMembers(members, () => undefined)).toThrow("The sandbox was not asked about src");
  });
});
