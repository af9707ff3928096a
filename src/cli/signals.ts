/**
 * What `walkin dev` / `walkin start` do on SIGINT and SIGTERM: the first one shuts down
 * cleanly, a second one exits at once.
 *
 * One Ctrl-C often arrives more than once. The terminal sends SIGINT to the whole foreground
 * process group, and a parent in that group forwards it again: `npm run dev` (npm's run-script
 * passes SIGINT and SIGTERM on to its child), `npm start` of the examples, `concurrently`…
 * So, step by step, for one key press under `npm run dev`:
 *  1. the terminal's SIGINT reaches walkin: the clean shutdown starts;
 *  2. the same SIGINT reaches npm, which sends it to walkin a few milliseconds later;
 *  3. were that counted as a second Ctrl-C, the shutdown would be cut short ("exiting
 *     without a clean shutdown") — on some presses and not others, depending on timing.
 * A repeat within `duplicateWindowMs` of the first is therefore the same key press; a person
 * pressing Ctrl-C again takes longer than that, and gets the immediate exit.
 */
export interface ShutdownSignalOptions {
  /** Starts the clean shutdown (called once). */
  stop(signal: NodeJS.Signals): void;
  /** Gives up on the clean shutdown and exits now. */
  forceExit(signal: NodeJS.Signals): void;
  /** Repeats closer than this to the first signal count as the same one. Default 500 ms. */
  duplicateWindowMs?: number;
  now?: () => number;
}

/**
 * Returns the handler to install for SIGINT and SIGTERM.
 *
 * @example
 * const onSignal = shutdownOnSignals({ stop: () => void server.close(), forceExit: () => process.exit(130) });
 * process.on("SIGINT", onSignal);
 * process.on("SIGTERM", onSignal);
 */
export function shutdownOnSignals({ stop, forceExit, duplicateWindowMs = 500, now = Date.now }: ShutdownSignalOptions): (signal: NodeJS.Signals) => void {
  let firstAt: number | null = null;
  let forced = false;
  return (signal) => {
    if (firstAt === null) {
      firstAt = now();
      stop(signal);
    } else if (!forced && now() - firstAt >= duplicateWindowMs) {
      forced = true;
      forceExit(signal);
    }
  };
}
