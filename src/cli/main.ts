/**
 * The `walkin` command line: argument parsing, help, and dispatch to `init`, `dev`, `start`
 * and `codegen`. `bin/walkin.js` calls `main` and exits with the code it resolves to; `dev` and
 * `start` resolve only after a SIGINT / SIGTERM has shut the server and engine down.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { CodegenError, writeGenerated } from "./codegen.js";
import { createOutput, type Output } from "./output.js";
import { shutdownOnSignals } from "./signals.js";
import { signalTree } from "./processTree.js";

type Options = NonNullable<ParseArgsConfig["options"]>;
type Values = Record<string, string | boolean | undefined>;

interface Command {
  summary: string;
  options: Options;
  /** Flag → description, in help order. */
  help: Array<[flag: string, description: string]>;
  examples: string[];
  /** The positional arguments it takes, for usage lines (none when absent). */
  positionals?: string;
  run(values: Values, output: Output, positionals: string[]): Promise<number>;
}

const DIR_HELP: [string, string] = ["--dir <path>", "functions directory (default: functions)"];
const SERVER_OPTIONS: Options = {
  dir: { type: "string", default: "functions" },
  port: { type: "string", default: "3210" },
  host: { type: "string", default: "127.0.0.1" },
  db: { type: "string" },
  static: { type: "string" },
};
const SERVER_HELP: Array<[string, string]> = [
  DIR_HELP,
  ["--port <number>", "port to listen on; 0 picks a free one (default: 3210)"],
  ["--host <address>", "address to listen on; 0.0.0.0 for every interface (default: 127.0.0.1)"],
  ["--db <url>", "the database: sqlite:<file> (or a file path), or postgres://user@host:5432/db (default: $WALKIN_DB, else .walkin/data.sqlite)"],
  ["--static <dir>", "also serve the files of this folder (e.g. a built front end)"],
];

const COMMANDS: Record<string, Command> = {
  init: {
    summary: "Create an app (functions, a React page on Vite) in a folder, or add to the current one",
    options: {},
    help: [],
    positionals: "[folder]",
    examples: ["walkin init my-app", "walkin init"],
    run: runInit,
  },
  dev: {
    summary: "Run the dev server: generate code, serve, and reload on every change",
    options: { ...SERVER_OPTIONS, run: { type: "string" } },
    help: [...SERVER_HELP, ["--run <command>", 'also run this command (e.g. "vite"), stopped with the server']],
    examples: ["walkin dev", 'walkin dev --run "vite --port 5173"', "walkin dev --port 0 --static dist", "walkin dev --dir backend --db /tmp/app.sqlite"],
    run: (values, output) => runServer(values, output, true),
  },
  start: {
    summary: "Run the server for production: no watching, no internal error details sent to clients",
    options: SERVER_OPTIONS,
    help: SERVER_HELP,
    examples: ["walkin start --host 0.0.0.0 --port 8080 --db /var/lib/app/data.sqlite --static dist"],
    run: (values, output) => runServer(values, output, false),
  },
  codegen: {
    summary: "Write functions/_generated/ (typed api, builders bound to the schema) and exit",
    options: { dir: { type: "string", default: "functions" } },
    help: [DIR_HELP],
    examples: ["walkin codegen", "walkin codegen --dir backend"],
    run: runCodegen,
  },
};

/**
 * Runs the CLI with `argv` (without `node` and the script) and resolves to the exit code.
 *
 * @example
 * process.exitCode = await main(["codegen", "--dir", "functions"]);
 */
export async function main(argv: readonly string[], output: Output = createOutput({ stdout: process.stdout, stderr: process.stderr })): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    output.info(rootHelp(output));
    return name === undefined ? 1 : 0;
  }
  if (name === "--version" || name === "-v") {
    output.info(version());
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    output.error(`Unknown command "${name}". Run walkin --help to see the commands.`);
    return 1;
  }
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: command.positionals !== undefined,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (error) {
    // parseArgs explains `--` for positionals; our commands take none, so keep the first sentence.
    const reason = (error as Error).message.split(/\. To specify|\n/)[0]!.replace(/\.?$/, ".");
    output.error(`${reason} Run walkin ${name} --help for its options.`);
    return 1;
  }
  if (values["help"]) {
    output.info(commandHelp(name, command, output));
    return 0;
  }
  // An empty value is nearly always an unset variable (`--static "$DIST"`). Taken as given, an
  // empty --static or --dir is the current folder (the project's files served, .env and database
  // included; _generated/ written into the project's root) and an empty --host every interface.
  // (--port has its own check, with the range.)
  const empty = Object.keys(command.options).find((option) => option !== "port" && typeof values[option] === "string" && values[option].trim() === "");
  if (empty !== undefined) {
    output.error(`--${empty} is empty (an unset variable in --${empty} "$VAR"?). Give it a value, or leave the option out for its default.`);
    return 1;
  }
  return command.run(values, output, positionals);
}

async function runInit(_values: Values, output: Output, positionals: string[]): Promise<number> {
  if (positionals.length > 1) {
    output.error(`walkin init takes one folder, not ${positionals.length}. Quote a name with spaces.`);
    return 1;
  }
  const folder = positionals[0] ?? ".";
  const { initApp, InitError } = await import("./init.js");
  try {
    const { created, kept, addedToPackageJson, devScript } = await initApp(folder);
    for (const file of created) output.success(`Created ${path.join(folder, file)}`);
    for (const file of kept) output.info(output.style("dim", `  Kept ${path.join(folder, file)} (it exists)`));
    if (addedToPackageJson.length > 0) output.success(`Added to ${path.join(folder, "package.json")}: ${addedToPackageJson.join(", ")}`);
    // An existing app's own dev script (a Vite app's `vite`) is kept, so `npm run dev` would
    // start its page without the Walk-in server: then the next step runs both. The script
    // itself is run, not `npm run dev`: stopping npm would leave its child running.
    let dev = "npm run dev";
    if (!/\bwalkin dev\b/.test(devScript)) {
      const withServer = `walkin dev --run ${shellQuote(devScript)}`;
      dev = `npx ${withServer}`;
      output.warn(
        `package.json's "dev" script (${devScript}) does not start Walk-in, and walkin init keeps scripts that are set. ` +
          `Run ${dev} (the server and your dev command together), or change the script to: ${withServer}`,
      );
    }
    const cd = path.resolve(folder) === process.cwd() ? "" : `cd ${shellQuote(folder)} && `;
    output.info(["", "Next:", `  ${cd}npm install && ${dev}`, "and open http://localhost:5173 (the guide: docs/getting-started.md)."].join("\n"));
    return 0;
  } catch (error) {
    if (error instanceof InitError) {
      output.error(error.message);
      return 1;
    }
    throw error;
  }
}

/**
 * `word` as a shell reads it back unchanged, for a line the user copies: a folder `my app`
 * unquoted would be `cd my` with a stray argument, `it's` an unterminated quote.
 */
function shellQuote(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  // cmd.exe has no single quotes (and a folder name there cannot hold a double quote).
  if (process.platform === "win32") return `"${word.replaceAll('"', '\\"')}"`;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

async function runCodegen(values: Values, output: Output): Promise<number> {
  const dir = path.resolve(String(values["dir"]));
  try {
    const { scan, written, removed } = await writeGenerated(dir);
    const what = `${scan.modules.length} module${scan.modules.length === 1 ? "" : "s"}${scan.hasSchema ? " and the schema" : ", no schema"}`;
    output.success(
      `${written.length > 0 || removed.length > 0 ? "Generated" : "Up to date:"} ${output.relative(path.join(dir, "_generated"))} (${what})`,
    );
    for (const file of removed) output.info(`  Removed ${output.relative(file)} (not written by walkin codegen)`);
    return 0;
  } catch (error) {
    if (error instanceof CodegenError) {
      for (const { file, message } of error.problems) output.fileError(path.join(dir, file), message);
      return 1;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      output.error(`No functions directory at ${output.relative(dir) || "."}. Create it, or point to it with --dir.`);
      return 1;
    }
    throw error;
  }
}

async function runServer(values: Values, output: Output, dev: boolean): Promise<number> {
  // Number("") is 0, a random port: an unset `--port "$PORT"` must be refused, not served.
  const port = /^\d+$/.test(String(values["port"])) ? Number(values["port"]) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    output.error(`--port must be a whole number from 0 to 65535, not "${values["port"]}".`);
    return 1;
  }
  // Loaded on demand: `codegen` and `--help` need neither the engine nor SQLite.
  const { serve } = await import("./serve.js");
  // A signal while the functions load or the engine opens is kept and acted on once serving:
  // without a handler yet, Node's default would end the process before the database closes.
  // A second one, though, exits at once, as it does once serving: a module whose import hangs
  // must not leave the process deaf to Ctrl-C.
  let early: NodeJS.Signals | null = null;
  let forced!: (signal: NodeJS.Signals) => void;
  const forcedExit = new Promise<"forced">((resolve) => (forced = (signal) => {
    output.warn(`${signal} again: exiting without a clean shutdown.`);
    resolve("forced");
  }));
  const onEarly = shutdownOnSignals({ stop: (signal) => void (early ??= signal), forceExit: forced });
  process.on("SIGINT", onEarly);
  process.on("SIGTERM", onEarly);
  const serving = await Promise.race([serve({
    dir: String(values["dir"]),
    port,
    host: String(values["host"]),
    db: typeof values["db"] === "string" ? values["db"] : process.env["WALKIN_DB"] || "sqlite:.walkin/data.sqlite",
    staticDir: typeof values["static"] === "string" ? path.resolve(values["static"]) : null,
    dev,
    output,
  }), forcedExit]).finally(() => {
    process.off("SIGINT", onEarly);
    process.off("SIGTERM", onEarly);
  });
  if (serving === "forced") return 130;
  if (!serving) return 1;
  const companion = typeof values["run"] === "string" ? runCompanion(values["run"], output) : null;
  return new Promise<number>((resolve) => {
    const onSignal = shutdownOnSignals({
      stop() {
        output.info(output.style("dim", "Shutting down… (Ctrl-C again to exit at once)"));
        companion?.stop();
        serving.close().then(
          () => resolve(0),
          (error: unknown) => {
            output.error(`Shutdown failed: ${(error as Error)?.stack ?? String(error)}`);
            resolve(1);
          },
        );
      },
      forceExit(signal) {
        companion?.stop();
        output.warn(`${signal} again: exiting without a clean shutdown.`);
        resolve(130);
      },
    });
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    if (early) onSignal(early);
    // `dev` whose first version did not load starts listening only when a fixed one does: if
    // the port is taken then, it has nothing to serve and says so, and exits as `start` would.
    void serving.listenFailed.then(() => serving.close().then(() => resolve(1), () => resolve(1)));
  });
}

/**
 * `walkin dev --run <command>`: a command run beside the server through the shell (so npm
 * scripts' PATH finds `vite`), stopped with it. Its exit does not stop the server.
 */
function runCompanion(command: string, output: Output): { stop(): void } {
  // The shell runs the command as its child: stopping the shell alone would leave the command
  // (vite, holding its port) running. `exec` makes a simple command replace the shell, so that
  // the process stopped is the command itself.
  // (Not for `A=1 vite`: `exec A=1 vite` would look for a program named "A=1".)
  const simple = process.platform !== "win32" && !/[;&|()`\n]/.test(command) && !/^\s*[A-Za-z_]\w*=/.test(command);
  const child = spawn(simple ? `exec ${command}` : command, { shell: true, stdio: "inherit" });
  let stopping = false;
  child.on("error", (error) => output.warn(`Could not run "${command}": ${error.message}`));
  child.on("exit", (code, signal) => {
    if (!stopping && code !== 0) output.warn(`"${command}" exited with ${signal ?? `code ${code}`}; the Walk-in server keeps running.`);
  });
  return {
    stop() {
      stopping = true;
      // The shell of a compound command (`a && b`) and what it started: signalling the shell
      // alone would leave them running (processTree.ts).
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) signalTree(child.pid, "SIGTERM");
    },
  };
}

function rootHelp(output: Output): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    `${output.style("bold", "walkin")} ${version()}: the Walk-in command line`,
    "",
    `Usage: walkin <command> [options]`,
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Run walkin <command> --help for a command's options. walkin --version prints the version.",
  ].join("\n");
}

function commandHelp(name: string, command: Command, output: Output): string {
  const rows: Array<[string, string]> = [...command.help, ["-h, --help", "show this help"]];
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return [
    `${output.style("bold", `walkin ${name}`)}: ${command.summary}`,
    "",
    `Usage: walkin ${name}${command.positionals ? ` ${command.positionals}` : ""} [options]`,
    "",
    "Options:",
    ...rows.map(([flag, description]) => `  ${flag.padEnd(width)}  ${description}`),
    "",
    "Examples:",
    ...command.examples.map((e) => `  ${e}`),
  ].join("\n");
}

function version(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
