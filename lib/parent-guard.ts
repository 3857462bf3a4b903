/**
 * Under npm (`npm start`, `npx watchpost …`), npm runs the command through a shell: a SIGTERM to
 * npm ends npm and the shell, and node, reparented, would keep running with its ports bound. So
 * when started by npm, the process watches its parent and, once it is gone, stops as it would on
 * SIGTERM. (Run directly, by systemd or in a container, signals reach it and this does nothing.)
 */

const POLL_MS = 1000;
/** The parent when this module loaded (at the start of the CLI): a parent gone before the guard is set still counts. */
const FIRST_PARENT = process.ppid;

/** Calls `onExit` once when the parent process goes away; only when started by npm. Returns a stop function. */
export function exitWithParent(onExit: () => void, env: NodeJS.ProcessEnv = process.env): () => void {
  if (!env.npm_lifecycle_event) return () => undefined;
  const parent = FIRST_PARENT;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onExit();
  }, POLL_MS);
  // Never what keeps the process alive.
  timer.unref();
  return () => clearInterval(timer);
}
