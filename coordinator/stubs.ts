/**
 * How other modules reach a sandbox's coordinator: by the sandbox key (storage/layout.ts). Kept
 * apart from the class so that modules the coordinator uses can call coordinators too without
 * importing it.
 */
export function coordinatorFor(namespace: Env["SANDBOX_COORDINATOR"], key: string) {
  return namespace.get(namespace.idFromName(key));
}

export type CoordinatorStub = ReturnType<typeof coordinatorFor>;
