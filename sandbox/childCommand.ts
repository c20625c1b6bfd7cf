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
import { toBase64 } from "./base64";
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
 * The supervisor, run as `bash supervise.sh <run dir>`. The command's environment is sourced by
 * the child only, and the child's own `bash -c` comes by absolute path, so a job's PATH or a
 * variable named like ours changes nothing here.
 */
const SUPERVISOR = `${REAP_FUNCTION}
run=$1
cd -- "$run" || exit 1
command_text=$(< command)
cwd=$(< cwd)
stdin_file=/dev/null
[ -e stdin ] && stdin_file=$run/stdin
setsid_path=$(command -v setsid)
if mkdir -p -- "$cwd" 2>/dev/null && cd -- "$cwd" 2>/dev/null; then
  "$setsid_path" "$BASH" -c 'set -a; . "$1"; set +a; exec "$2" -c "$3"' job "$run/env" "$BASH" "$command_text" < "$stdin_file" > "$run/stdout" 2> "$run/stderr" &
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
rm -f -- "$run/stdin" "$run/env"
echo "$status" > "$run/exit.tmp" && mv -- "$run/exit.tmp" "$run/exit"
`;

export interface ChildCommand {
  command: string;
  cwd: string;
  env: Record<string, string>;
}

export function runDirectory(runId: string): string {
  return `${RUNS_DIR}/${runId}`;
}

/** Where a command's stdin is written before it starts (the start script moves it into its run directory). */
export function stdinPath(runId: string): string {
  return `${RUNS_DIR}/${runId}.stdin`;
}

function envFile(env: Record<string, string>): string {
  // Names are validated by the job schema; values are quoted, so any text is safe.
  return Object.entries(env)
    .map(([name, value]) => `${name}=${shellQuote(value)}\n`)
    .join("");
}

function writeFileLine(path: string, content: string): string {
  return `printf %s ${shellQuote(toBase64(new TextEncoder().encode(content)))} | base64 -d > ${path}`;
}

/**
 * Starts the command (and, in the same round trip, waits like `pollScript` for its first output
 * or its end). Prints `as-start-failed` when the run directory could not be made.
 */
export function startScript(runId: string, child: ChildCommand, hasStdin: boolean, firstWaitMs: number, sliceBytes: number): string {
  const dir = shellQuote(runDirectory(runId));
  const start = [
    `run=${dir}`,
    `mkdir -p -- "$run" && cd -- "$run" || { echo as-start-failed; exit 0; }`,
    writeFileLine("command", child.command),
    writeFileLine("cwd", child.cwd),
    writeFileLine("env", envFile(child.env)),
    writeFileLine("supervise.sh", SUPERVISOR),
    hasStdin ? `mv -- ${shellQuote(stdinPath(runId))} stdin` : "",
    // A new session, its output nowhere: the exec that started it returns at once.
    `setsid bash supervise.sh "$run" < /dev/null > /dev/null 2>&1 &`,
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
  const script = `run=${shellQuote(runDirectory(runId))}
cd -- "$run" 2>/dev/null || { echo as-missing; exit 0; }
size() { stat -c %s -- "$1" 2>/dev/null || echo 0; }
out_at=${offsets.stdout}; err_at=${offsets.stderr}; slice=${sliceBytes}; tick=0
while [ ! -e exit ] && [ "$(size stdout)" -le "$out_at" ] && [ "$(size stderr)" -le "$err_at" ] && [ "$tick" -lt ${ticks} ]; do
  sleep ${POLL_TICK_SECONDS}; tick=$((tick + 1))
done
status=-
[ -e exit ] && status=$(< exit)
out_size=$(size stdout); err_size=$(size stderr)
echo "as-status $out_size $err_size $status"
tail -c +$((out_at + 1)) stdout 2>/dev/null | head -c "$slice" | base64 -w0; echo
tail -c +$((err_at + 1)) stderr 2>/dev/null | head -c "$slice" | base64 -w0; echo
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
