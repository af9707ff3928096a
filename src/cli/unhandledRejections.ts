/**
 * What `walkin dev` and `walkin start` do with a promise that failed while no code was waiting
 * for it: report it and keep serving.
 *
 * Why: such a promise is nearly always app code that forgot an `await`, such as
 * `void ctx.db.insert("messages", badValue)` or `ctx.scheduler.runAfter(...)` whose arguments
 * fail their validator. Node's default for an unhandled rejection is to end the process, so one
 * careless line in one function would take the server down for every client, and `walkin start`
 * would go on crashing each time that function ran. The function itself has already answered
 * (its transaction does not wait for a call it did not await), so there is nobody else to tell:
 * the error goes to the server's output with its message and stack (a refused write's message
 * names the table and the field; an error the app made names the app's file and line).
 *
 * Only the CLI, which owns its process, installs this. An app that embeds the engine or
 * `startServer` in a process of its own decides for that process (docs/functions.md).
 */
import type { Output } from "./output.js";

/** Installs the report for the life of the server; returns the function that removes it. */
export function reportUnhandledRejections(output: Output): () => void {
  const onRejection = (reason: unknown) => {
    const detail = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    output.error(
      `A promise failed with nothing awaiting it, usually a ctx.db, ctx.scheduler or ctx.run* call without \`await\`; ` +
        `what it was to do did not happen. The server keeps running. Await every call (typescript-eslint's ` +
        `no-floating-promises rule finds the ones that are not).\n${detail}`,
    );
  };
  process.on("unhandledRejection", onRejection);
  return () => process.off("unhandledRejection", onRejection);
}
