/**
 * Execution sessions as the SDK sees them: a named cwd + env (+ default command timeout) that
 * commands and relative file paths run against, and, as in Cloudflare's container server, one
 * long-lived shell per session that its commands run in (sessionShell.ts). A session whose shell
 * has exited answers its next call with SESSION_TERMINATED once; the call after that starts afresh.
 */
import { isAbsolute, resolve } from "node:path";
import { AgentError, ErrorCode } from "./errors.ts";
import { isDirectory } from "./exec.ts";
import type { Reaper } from "./reaper.ts";
import type { EnvMap, SessionCreateRequest } from "./schemas.ts";
import { SessionShell, sessionTerminated } from "./sessionShell.ts";

/** The SDK's marker for "run without a session" (packages/shared/src/internal.ts). */
export const DISABLE_SESSION_TOKEN = "__DISABLE_SESSION__";
/** The session a request without `sessionId` runs in. */
export const DEFAULT_SESSION_ID = "default";

export type Session = {
  id: string;
  cwd: string;
  env: Record<string, string>;
  commandTimeoutMs: number | undefined;
  /** Started with the session's first command. */
  shell: SessionShell | undefined;
  /** Set when the shell exited on its own (`exit`, `kill $$`), not by a delete. */
  shellExitCode: number | undefined;
};

/** Where and how one command runs, after session and request options are merged. */
export type ExecutionTarget = {
  /** The session whose shell runs the command, or undefined when sessionless. */
  session: Session | undefined;
  cwd: string;
  /** True when `cwd` came from the request: a missing directory then fails the command, as `cd` would. */
  cwdRequested: boolean;
  /** The request's own env (a session's env is in its shell already). */
  env: Record<string, string>;
  timeoutMs: number | undefined;
};

export function definedEnv(env: EnvMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env ?? {})) if (typeof value === "string") out[key] = value;
  return out;
}

/** A session whose start directory is missing starts in $HOME, as the real session shell does. */
function startDirectory(session: Session): string {
  return isDirectory(session.cwd) ? session.cwd : (process.env.HOME ?? "/");
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly defaultCwd: string,
    /** The container-wide default (the real container's COMMAND_TIMEOUT_MS). */
    private readonly defaultCommandTimeoutMs: number | undefined,
    private readonly reaper: Reaper,
  ) {}

  create(request: SessionCreateRequest & { id: string }): Session {
    const existing = this.sessions.get(request.id);
    // As the real server: creating a session whose shell has exited recreates it.
    if (existing?.shellExitCode !== undefined) this.sessions.delete(request.id);
    else if (existing) {
      throw new AgentError(ErrorCode.SESSION_ALREADY_EXISTS, `Session '${request.id}' already exists`, {
        sessionId: request.id,
        containerPlacementId: null,
      });
    }
    const session: Session = {
      id: request.id,
      cwd: request.cwd ?? this.defaultCwd,
      env: definedEnv(request.env),
      commandTimeoutMs: request.commandTimeoutMs,
      shell: undefined,
      shellExitCode: undefined,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  async delete(sessionId: string): Promise<void> {
    const session = this.sessions.get(sessionId);
    if (!session) {
      throw new AgentError(ErrorCode.INTERNAL_ERROR, `Session '${sessionId}' not found`, { sessionId, originalError: "Session not found" });
    }
    this.sessions.delete(sessionId);
    await session.shell?.destroy();
  }

  /** Ends every session's shell (the agent is stopping). */
  async destroyAll(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map((session) => session.shell?.destroy()));
  }

  /**
   * Like the real container, executing in an unknown session creates it. One whose shell exited
   * is forgotten, and this call is told so (the next one starts a fresh session).
   */
  private getOrCreate(sessionId: string, cwd: string | undefined): Session {
    const existing = this.sessions.get(sessionId);
    if (existing?.shellExitCode !== undefined) {
      this.sessions.delete(sessionId);
      throw sessionTerminated(sessionId, existing.shellExitCode);
    }
    return existing ?? this.create({ id: sessionId, cwd });
  }

  /** After a command ended its session's shell: the session is gone, and the caller is told so. */
  forgetTerminated(session: Session): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
  }

  /** The session's shell, started with its first command in the session's directory; a dead one is never replaced here. */
  shellOf(session: Session): SessionShell {
    if (session.shell?.alive) return session.shell;
    if (session.shell) throw sessionTerminated(session.id, session.shellExitCode);
    const shell = new SessionShell({
      sessionId: session.id,
      cwd: startDirectory(session),
      env: session.env,
      reaper: this.reaper,
      onExit: (exitCode) => {
        // A deleted session's shell was ended on purpose.
        if (this.sessions.get(session.id) === session) session.shellExitCode = exitCode;
      },
    });
    session.shell = shell;
    return shell;
  }

  /** Merges session and per-command options the way the container's session shell does. */
  target(sessionId: string | undefined, request: { cwd?: string; env?: EnvMap; timeoutMs?: number }): ExecutionTarget {
    const env = definedEnv(request.env);
    if (sessionId === DISABLE_SESSION_TOKEN) {
      return {
        session: undefined,
        cwd: request.cwd ?? this.defaultCwd,
        cwdRequested: request.cwd !== undefined,
        env,
        timeoutMs: request.timeoutMs,
      };
    }
    const session = this.getOrCreate(sessionId ?? DEFAULT_SESSION_ID, request.cwd);
    return {
      session,
      // Without a cwd of its own the command runs wherever the session's shell is.
      cwd: request.cwd ?? session.cwd,
      cwdRequested: request.cwd !== undefined,
      env,
      timeoutMs: request.timeoutMs ?? session.commandTimeoutMs ?? this.defaultCommandTimeoutMs,
    };
  }

  /** Relative file paths resolve against the session's working directory: its shell's, once it has one (a `cd` moves it). */
  resolvePath(sessionId: string | undefined, path: string): string {
    if (isAbsolute(path)) return path;
    const session = sessionId === undefined || sessionId === DISABLE_SESSION_TOKEN ? undefined : this.sessions.get(sessionId);
    return resolve(session?.shell?.currentDirectory() ?? session?.cwd ?? this.defaultCwd, path);
  }
}
