// Which command lines run the agent, told without loading the CLI (the
// entry point asks before it loads anything else: runtime-settings.ts).

/** `run` is the command when none is named: an empty command line, or one that starts with an option (not --help, -h or --version). */
export function runIsImplied(first: string | undefined): first is undefined | `-${string}` {
  return first === undefined || (first.startsWith("-") && first !== "--version" && first !== "--help" && first !== "-h");
}

/** Whether the command line runs the agent: `run`, or no command. */
export function runsTheAgent(argv: readonly string[]): boolean {
  return argv[0] === "run" || runIsImplied(argv[0]);
}
