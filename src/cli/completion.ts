// `tapio-collectors completion bash|zsh|fish`: a completion script generated
// from the command tables of usage.ts (commands, flags, what their values and
// operands may be) and the descriptions in the help texts, so a command or
// flag added there is completed without touching this file.
import { builtinRegistry } from "../collectors/index.ts";
import { COMMAND_FLAGS, COMMAND_OPERANDS, EXIT, FLAG_VALUES, HELP, SHELLS, UsageError, parseCommandLine, type Command, type Completion } from "./usage.ts";

const PROGRAM = "tapio-collectors";
/** main.ts takes `help [COMMAND]` besides the commands of the table. */
const HELP_COMMAND = "help";

export type Shell = (typeof SHELLS)[number];

interface FlagSpec {
  long: string;
  short: string | undefined;
  /** undefined: a boolean flag; else what its value may be ("text": anything) */
  value: Completion | "text" | undefined;
  description: string;
}

interface CommandSpec {
  name: string;
  description: string;
  flags: FlagSpec[];
  operands: Completion | undefined;
}

/** Everything the scripts complete, read from the tables. */
export interface CliSpec {
  commands: CommandSpec[];
  /** The command when the first word is a flag (or there is none). */
  defaultCommand: string;
  collectorTypes: string[];
}

export async function completionCommand(args: string[]): Promise<number> {
  const { flags, operands } = parseCommandLine("completion", args);
  if (flags.help) {
    process.stdout.write(`${HELP.completion}\n`);
    return EXIT.ok;
  }
  const [shell, ...rest] = operands;
  if (shell === undefined || rest.length > 0 || !isShell(shell)) {
    throw new UsageError(`completion: name one shell: ${SHELLS.join(", ")}\n\n${HELP.completion}`);
  }
  process.stdout.write(completionScript(shell, cliSpec()));
  return EXIT.ok;
}

function isShell(name: string): name is Shell {
  return (SHELLS as readonly string[]).includes(name);
}

export function cliSpec(): CliSpec {
  const commands: CommandSpec[] = (Object.keys(COMMAND_FLAGS) as Command[]).map((name) => ({
    name,
    description: commandDescription(name),
    flags: [...Object.entries(COMMAND_FLAGS[name]), ["help", { type: "boolean", short: "h" }] as const].map(([long, option]) => ({
      long,
      short: "short" in option ? option.short : undefined,
      value: option.type === "boolean" ? undefined : (FLAG_VALUES[long] ?? "text"),
      description: flagDescription(name, long),
    })),
    operands: COMMAND_OPERANDS[name],
  }));
  commands.push({ name: HELP_COMMAND, description: "help for one command", flags: [], operands: commands.map((c) => c.name) });
  return { commands, defaultCommand: "run" satisfies Command, collectorTypes: builtinRegistry().types() };
}

/** From the command's line in the main help: `  tapio-collectors NAME ...   description`. */
function commandDescription(name: string): string {
  const line = new RegExp(`^  ${PROGRAM} \\[?${escapeRegExp(name)}\\]?(?: \\S+)*\\s{2,}(\\S.*)$`, "m").exec(HELP.main ?? "");
  return line?.[1] ?? "";
}

/**
 * From the flag's line in the command's help (`  -c, --config FILE    description`),
 * else in the first help that has one: short helps leave out common flags such as --config.
 */
function flagDescription(command: string, long: string): string {
  const line = new RegExp(`^\\s+(?:-\\w, )?--${escapeRegExp(long)}(?: \\S+)?\\s{2,}(\\S.*)$`, "m");
  for (const help of [HELP[command], ...Object.values(HELP)]) {
    const found = line.exec(help ?? "")?.[1];
    if (found) return found;
  }
  return "";
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function completionScript(shell: Shell, spec: CliSpec): string {
  if (shell === "bash") return bashScript(spec);
  if (shell === "zsh") return zshScript(spec);
  return fishScript(spec);
}

/** A shell word in single quotes. */
function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function words(values: Completion, spec: CliSpec): string[] {
  return values === "collector-types" ? spec.collectorTypes : values === "files" ? [] : [...values];
}

function bashScript(spec: CliSpec): string {
  const names = spec.commands.map((c) => c.name).join(" ");
  // what to do for the value after a flag, or for an operand
  const complete = (values: Completion | "text") => {
    if (values === "text") return "return 0";
    if (values === "files") return "_tapio_collectors_files; return 0";
    return `_tapio_collectors_words ${quote(words(values, spec).join(" "))}; return 0`;
  };
  const valueCases = spec.commands.flatMap((command) =>
    command.flags
      .filter((flag) => flag.value !== undefined)
      .map((flag) => {
        const patterns = [`--${flag.long}`, ...(flag.short ? [`-${flag.short}`] : [])].map((f) => quote(`${command.name} ${f}`));
        return `    ${patterns.join("|")}) ${complete(flag.value!)} ;;`;
      }),
  );
  const flagCases = spec.commands
    .filter((command) => command.flags.length > 0)
    .map((command) => `    ${quote(command.name)}) _tapio_collectors_words ${quote(command.flags.map((f) => `--${f.long}`).join(" "))} ;;`);
  const operandCases = spec.commands.filter((command) => command.operands !== undefined).map((command) => `    ${quote(command.name)}) ${complete(command.operands!)} ;;`);
  return `# bash completion for ${PROGRAM}, generated by \`${PROGRAM} completion bash\`.
_tapio_collectors_words() {
  COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_tapio_collectors_files() {
  # outside a completion (a test calling the function) compopt has nothing to set
  compopt -o filenames 2>/dev/null
  local IFS=$'\\n'
  COMPREPLY=($(compgen -f -- "$cur"))
}

_tapio_collectors() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" command=${spec.defaultCommand}
  COMPREPLY=()
  ((COMP_CWORD > 0)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  # bash splits --flag=value at "=": complete the value of the flag before it
  if [[ $cur == "=" ]]; then
    cur=""
  elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
    prev="\${COMP_WORDS[COMP_CWORD-2]}"
  fi
  # the command is the first word, unless that is a flag (then it is ${spec.defaultCommand})
  if ((COMP_CWORD > 1)); then
    case " ${names} " in
      *" \${COMP_WORDS[1]} "*) command="\${COMP_WORDS[1]}" ;;
    esac
  elif [[ $cur != -* ]]; then
    _tapio_collectors_words ${quote(names)}
    return 0
  fi
  case "$command $prev" in
${valueCases.join("\n")}
  esac
  if [[ $cur == -* ]]; then
    case "$command" in
${flagCases.join("\n")}
    esac
    return 0
  fi
  case "$command" in
${operandCases.join("\n")}
  esac
  return 0
}

complete -F _tapio_collectors ${PROGRAM}
`;
}

/** Text inside a zsh _arguments description: no brackets, which end it. */
function zshDescription(text: string): string {
  return text.replaceAll("[", "(").replaceAll("]", ")");
}

function zshAction(values: Completion | "text", spec: CliSpec, name: string): string {
  if (values === "text") return `:${name}: `;
  if (values === "files") return `:${name}:_files`;
  return `:${name}:(${words(values, spec).join(" ")})`;
}

function zshScript(spec: CliSpec): string {
  const argumentsOf = (command: CommandSpec) => {
    const specs = command.flags.flatMap((flag) => {
      const exclusive = flag.short ? `(-${flag.short} --${flag.long})` : "";
      const description = flag.description ? `[${zshDescription(flag.description)}]` : "";
      const action = flag.value === undefined ? "" : zshAction(flag.value, spec, flag.long);
      const long = `${exclusive}--${flag.long}${flag.value === undefined ? "" : "="}${description}${action}`;
      const short = flag.short ? [`${exclusive}-${flag.short}${flag.value === undefined ? "" : "+"}${description}${action}`] : [];
      return [...short, long];
    });
    if (command.operands !== undefined) {
      specs.push(command.operands === "files" ? `*${zshAction("files", spec, "file")}` : `1${zshAction(command.operands, spec, "argument")}`);
    }
    return specs.map(quote).join(" \\\n        ");
  };
  const commandList = spec.commands.map((c) => `    ${quote(`${c.name}:${c.description}`)}`).join("\n");
  const cases = spec.commands.map((c) => `    ${quote(c.name)})\n      _arguments -s \\\n        ${argumentsOf(c) || "''"}\n      ;;`).join("\n");
  return `#compdef ${PROGRAM}
# zsh completion for ${PROGRAM}, generated by \`${PROGRAM} completion zsh\`.
_${PROGRAM}() {
  local -a commands
  commands=(
${commandList}
  )
  local command=${spec.defaultCommand}
  if ((CURRENT > 2)) && ((\${commands[(I)\${words[2]}:*]})); then
    # _arguments below then sees the command as the program name
    command=$words[2]
    shift words
    ((CURRENT--))
  elif ((CURRENT == 2)) && [[ $PREFIX != -* ]]; then
    _describe -t commands '${PROGRAM} command' commands
    return
  fi
  case $command in
${cases}
  esac
}

# autoloaded from fpath, complete now; sourced, register
if [[ $funcstack[1] == _${PROGRAM} ]]; then
  _${PROGRAM} "$@"
else
  compdef _${PROGRAM} ${PROGRAM}
fi
`;
}

function fishScript(spec: CliSpec): string {
  const names = spec.commands.map((c) => c.name).join(" ");
  const noCommand = `not __fish_seen_subcommand_from ${names}`;
  const lines = [`# fish completion for ${PROGRAM}, generated by \`${PROGRAM} completion fish\`.`, `complete -c ${PROGRAM} -f`];
  for (const command of spec.commands) lines.push(`complete -c ${PROGRAM} -n ${quote(noCommand)} -a ${quote(command.name)} -d ${quote(command.description)}`);
  for (const command of spec.commands) {
    // the default command's flags apply before any command too
    const seen = `__fish_seen_subcommand_from ${command.name}`;
    const condition = quote(command.name === spec.defaultCommand ? `${seen}; or ${noCommand}` : seen);
    for (const flag of command.flags) {
      const names = `${flag.short ? `-s ${flag.short} ` : ""}-l ${flag.long}`;
      const value = flag.value === undefined ? "" : flag.value === "text" ? " -x" : flag.value === "files" ? " -r -F" : ` -x -a ${quote(words(flag.value, spec).join(" "))}`;
      lines.push(`complete -c ${PROGRAM} -n ${condition} ${names}${value}${flag.description ? ` -d ${quote(flag.description)}` : ""}`);
    }
    if (command.operands !== undefined) {
      const operands = command.operands === "files" ? "-F" : `-x -a ${quote(words(command.operands, spec).join(" "))}`;
      lines.push(`complete -c ${PROGRAM} -n ${quote(seen)} ${operands}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
