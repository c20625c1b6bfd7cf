/**
 * What every route handler gets: the agent's sessions, its one-at-a-time command queue, the
 * streamed commands' process records and the reaper that ends a command's processes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { CommandQueue } from "./exec.ts";
import type { ProcessRegistry } from "./processes.ts";
import type { Reaper } from "./reaper.ts";
import type { SessionStore } from "./sessions.ts";

export type AgentContext = {
  sessions: SessionStore;
  queue: CommandQueue;
  processes: ProcessRegistry;
  reaper: Reaper;
  version: string;
};

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, context: AgentContext) => Promise<void>;
