/**
 * A job's command as a child process of its own, the way the README promises it runs (`bash -c`),
 * whatever the container's exec does with the text it is given. The shell scripts here are sent
 * through the SDK's plain `exec`:
 *
 * - `startScript` writes a run directory under /tmp (the command, its environment, its cwd) and
 *   starts a supervisor in a new session. The supervisor runs `bash -c <command>` in a session of
 *   its own with stdout and stderr in files, waits for it, kills whatever it left behind in its
 *   session, and only then writes the exit status (so the files are final once it exists).
 * - `pollScript` waits briefly for new output or the end, then reports the files' sizes, the exit
 *   status when there is one, and the bytes past the caller's offsets as base64: exact bytes, and
 *   one round trip per slice of output however many lines it has.
 * - `endScript` kills the command's session (a cancel, or its deadline).
 *
 * Nothing here enforces a deadline: a command may stop or kill everything in its container, so
 * the caller (the coordinator) keeps the clock and gives up on a container that stops answering.
 */
import { inSubshell, shellQuote } from "./shell";

/** Where run directories live; a fresh container's /tmp is empty. */
const RUNS_DIR = "/tmp/.artifact-sandbox-runs";
/** How often the poll script looks for output while it waits. */
const POLL_TICK_SECONDS = 0.02;

/**
 * `reap SID`: kills every live process of session SID, rescanning (a fork may escape one scan)
 * until none is left. Each sweep stops them all before killing them, so no shell of the command
 * sees its child die and reports it ("Killed") into the job's output. Pure bash over /proc, so
 * it needs no procps in the image.
 */
const REAP_FUNCTION = `reap() {
  local sid=$1 round p line
  local -a f pids
  for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    pids=()
    for p in /proc/[0-9]*; do
      { read -r line < "$p/stat"; } 2>/dev/null || continue
      f=(\${line##*) })
      if [ "\${f[3]}" = "$sid" ] && [ "\${f[0]}" != Z ]; then pids+=("\${p#/proc/}"); fi
    done
    [ "\${#pids[@]}" -eq 0 ] && return 0
    kill -STOP "\${pids[@]}" 2>/dev/null
    kill -KILL "\${pids[@]}" 2>/dev/null
    sleep 0.01
  done
}`;

/**
 * The supervisor, run as `bash -c <this> supervise <run dir>` in a session of its own. The job's
 * environment is sourced only in the child, after what the child needs was set aside in its
 * positional parameters, and bash comes by absolute path: a job's PATH or a variable named like
 * ours changes nothing here. Builtins wherever they do: a trivial job should cost few processes.
 */
const SUPERVISOR = `${REAP_FUNCTION}
run=$1
cd -- "$run" || exit 1
IFS= read -r -d '' command_text < command
IFS= read -r -d '' cwd < cwd
stdin_file=/dev/null
[ -e stdin ] && stdin_file=$run/stdin
hash setsid 2>/dev/null
setsid_path=\${BASH_CMDS[setsid]}
if { [ -d "$cwd" ] || mkdir -p -- "$cwd" 2>/dev/null; } && cd -- "$cwd" 2>/dev/null; then
  (
    set -- "$setsid_path" "$BASH" "$command_text" "$run/env"
    if [ -s "$4" ]; then set -a; . "$4"; set +a; fi
    exec "$1" "$2" -c "$3"
  ) < "$stdin_file" > "$run/stdout" 2> "$run/stderr" &
  child=$!
  echo "$child" > "$run/pid"
  wait "$child"
  status=$?
  reap "$child"
else
  printf 'Failed to change directory to %s\\n' "$cwd" > "$run/stderr"
  : > "$run/stdout"
  status=1
fi
echo "$status" > "$run/exit"
`;

export interface ChildCommand {
  command: string;
  cwd: string;
  env: Record<string, string>;
}

export function runDirectory(runId: string): string {
  return `${RUNS_DIR}/${runId}`;
}

/** Where a command's stdin is written before it starts (the container makes the directory). */
export function stdinPath(runId: string): string {
  return `${runDirectory(runId)}/stdin`;
}

function envFile(env: Record<string, string>): string {
  // Names are validated by the job schema; values are quoted, so any text is safe.
  return Object.entries(env)
    .map(([name, value]) => `${name}=${shellQuote(value)}\n`)
    .join("");
}

/** A builtin write of exact text (no NUL can be in it: it came from JSON through bash). */
function writeFileLine(path: string, content: string): string {
  return `printf %s ${shellQuote(content)} > ${path}`;
}

/**
 * Starts the command (and, in the same round trip, waits like `pollScript` for its first output
 * or its end). A stdin for it is written to `stdinPath(runId)` first. Prints `as-start-failed`
 * when the run directory could not be made.
 */
export function startScript(runId: string, child: ChildCommand, firstWaitMs: number, sliceBytes: number): string {
  const start = [
    `run=${shellQuote(runDirectory(runId))}`,
    `mkdir -p -- "$run" && cd -- "$run" && mkfifo tick || { echo as-start-failed; exit 0; }`,
    writeFileLine("command", child.command),
    writeFileLine("cwd", child.cwd),
    writeFileLine("env", envFile(child.env)),
    // A new session, its output nowhere: the exec that started it returns at once.
    `setsid bash -c ${shellQuote(SUPERVISOR)} supervise "$run" < /dev/null > /dev/null 2>&1 &`,
  ].join("\n");
  return `${inSubshell(start)}\n${pollScript(runId, { stdout: 0, stderr: 0 }, firstWaitMs, sliceBytes)}`;
}

/**
 * Reports, after waiting up to `waitMs` for anything new: a line `as-status <stdout size>
 * <stderr size> <exit status or ->`, then up to `sliceBytes` of stdout and of stderr past the
 * offsets, each as one base64 line. Once the command has ended and this answer carries the rest
 * of its output, the run directory is removed. Prints `as-missing` when there is no such run.
 */
export function pollScript(runId: string, offsets: { stdout: number; stderr: number }, waitMs: number, sliceBytes: number): string {
  const ticks = Math.max(0, Math.floor(waitMs / 1000 / POLL_TICK_SECONDS));
  // Waiting costs no process: a timed read on the run's FIFO ticks, and a file's mtime against a
  // marker's tells of new output; the sizes are looked at again every tenth tick all the same,
  // since a write in the marker's own clock tick leaves its mtime equal, not newer.
  const script = `run=${shellQuote(runDirectory(runId))}
cd -- "$run" 2>/dev/null || { echo as-missing; exit 0; }
out_at=${offsets.stdout}; err_at=${offsets.stderr}; slice=${sliceBytes}
look() {
  status=-
  [ -s exit ] && { IFS= read -r status < exit || true; }
  out_size=0; err_size=0
  if [ -e stderr ]; then
    local -a sizes
    sizes=($(stat -c %s -- stdout stderr 2>/dev/null))
    out_size=\${sizes[0]:-0}; err_size=\${sizes[1]:-0}
  fi
}
nothing_new() { [ "$status" = - ] && [ "$out_size" -le "$out_at" ] && [ "$err_size" -le "$err_at" ]; }
look
if nothing_new && [ ${ticks} -gt 0 ]; then
  exec 9<> tick
  : > .polled
  tick=0
  while [ "$tick" -lt ${ticks} ] && [ ! -s exit ]; do
    if [ stdout -nt .polled ] || [ stderr -nt .polled ] || [ $((tick % 10)) -eq 9 ]; then
      : > .polled
      look
      nothing_new || break
    fi
    read -t ${POLL_TICK_SECONDS} -u 9 _ || true
    tick=$((tick + 1))
  done
  exec 9<&-
  look
fi
echo "as-status $out_size $err_size $status"
slice_of() { [ "$2" -gt "$3" ] && dd if="$1" bs=65536 skip="$3" count="$slice" iflag=skip_bytes,count_bytes status=none | base64 -w0; echo; }
slice_of stdout "$out_size" "$out_at"
slice_of stderr "$err_size" "$err_at"
if [ "$status" != - ] && [ $((out_size - out_at)) -le "$slice" ] && [ $((err_size - err_at)) -le "$slice" ]; then cd / && rm -rf -- "$run"; fi`;
  return inSubshell(script);
}

/** Kills the command's whole session; the supervisor then records its exit status as usual. */
export function endScript(runId: string): string {
  const script = `${REAP_FUNCTION}
run=${shellQuote(runDirectory(runId))}
[ -e "$run/pid" ] && reap "$(< "$run/pid")"
true`;
  return inSubshell(script);
}

/**
 * Kills every run's session and removes every run directory: for a runner taking over from one
 * that died, when nothing else runs in the sandbox. Unwrapped: meant for the port's `run`.
 */
export function endAllScript(): string {
  return `${REAP_FUNCTION}
for pid_file in ${RUNS_DIR}/*/pid; do
  [ -e "$pid_file" ] && reap "$(< "$pid_file")"
done
rm -rf -- ${RUNS_DIR}
true`;
}

export type PollReport =
  | { kind: "missing" }
  | {
      kind: "report";
      stdoutSize: number;
      stderrSize: number;
      /** The exit status once the command (and everything it left in its session) has ended. */
      exitCode: number | null;
      stdout: Uint8Array;
      stderr: Uint8Array;
    };

export class PollReportError extends Error {
  override readonly name = "PollReportError";
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Parses what `pollScript` (or `startScript`) printed. */
export function parsePollReport(stdout: string): PollReport {
  const lines = stdout.split("\n");
  const statusAt = lines.findIndex((line) => line.startsWith("as-status ") || line === "as-missing" || line === "as-start-failed");
  const statusLine = lines[statusAt];
  if (statusLine === "as-missing") return { kind: "missing" };
  if (statusLine === "as-start-failed" || statusLine === undefined) {
    throw new PollReportError(`The sandbox could not start the command (${statusLine ?? "no status in its answer"})`);
  }
  const [, stdoutSize, stderrSize, exit] = statusLine.split(" ");
  const sizes = [Number(stdoutSize), Number(stderrSize)];
  if (!sizes.every(Number.isSafeInteger)) throw new PollReportError(`Unreadable status from the sandbox: ${statusLine}`);
  const exitCode = exit === "-" || exit === undefined ? null : Number(exit);
  if (exitCode !== null && !Number.isSafeInteger(exitCode)) throw new PollReportError(`Unreadable exit status: ${statusLine}`);
  return {
    kind: "report",
    stdoutSize: sizes[0] ?? 0,
    stderrSize: sizes[1] ?? 0,
    exitCode,
    stdout: decodeBase64(lines[statusAt + 1] ?? ""),
    stderr: decodeBase64(lines[statusAt + 2] ?? ""),
  };
}
