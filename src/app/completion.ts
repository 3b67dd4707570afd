/**
 * Shell completion for bash and zsh, generated from the commander program itself, so every
 * command, subcommand, option and choice the CLI has is completed and nothing it lacks is:
 *
 *   source <(aegis-audit completion bash)     # ~/.bashrc
 *   source <(aegis-audit completion zsh)      # ~/.zshrc (zsh runs the same function through bashcompinit)
 */
import type { Command, Option } from 'commander';

export interface CompletionValues {
  /** Values of options by long flag (`--format`), besides commander choices. `@checks` = check ids; `@files` = file names. */
  options?: Record<string, readonly string[]>;
  /** Values of a command's first positional argument, by command path (`explain`). */
  args?: Record<string, readonly string[]>;
  checks: readonly string[];
}

interface Node {
  path: string;
  subcommands: string[];
  flags: string[];
}

function walk(cmd: Command, path: string[], out: Node[]): void {
  const subs = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  const opts = (cmd.options as readonly Option[]).filter((o) => !o.hidden);
  const flags = opts.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
  flags.push('--help');
  if (path.length === 0) flags.push('--version');
  out.push({ path: path.join(' '), subcommands: subs.map((c) => c.name()), flags });
  for (const c of subs) walk(c, [...path, c.name()], out);
}

/** Long flags that take a value, with their completion words. */
function valueFlags(cmd: Command, extra: Record<string, readonly string[]>): Map<string, readonly string[]> {
  const m = new Map<string, readonly string[]>();
  const visit = (c: Command) => {
    for (const o of c.options as readonly Option[]) {
      if (!o.required && !o.optional) continue;
      const words = o.argChoices ?? extra[o.long ?? ''] ?? ['@files'];
      for (const f of [o.long, o.short]) if (f) m.set(f, words);
    }
    c.commands.forEach(visit);
  };
  visit(cmd);
  return m;
}

const word = (s: string) => s.replace(/[^A-Za-z0-9_.,:@/|*+-]/g, '');

function wordsExpr(words: readonly string[], checks: readonly string[]): string {
  if (words.length === 1 && words[0] === '@files') return 'COMPREPLY=($(compgen -f -- "$cur")); return';
  if (words.length === 1 && words[0] === '@checks') {
    // A comma-separated list: complete the part after the last comma.
    return `local pre=""; [[ "$cur" == *,* ]] && pre="\${cur%,*},"; COMPREPLY=($(compgen -P "$pre" -W "${checks.map(word).join(' ')}" -- "\${cur##*,}")); return`;
  }
  return `COMPREPLY=($(compgen -W "${words.map(word).join(' ')}" -- "$cur")); return`;
}

export function bashCompletion(program: Command, values: CompletionValues): string {
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
  const nodes: Node[] = [];
  walk(program, [], nodes);
  const known = nodes.filter((n) => n.path).map((n) => `"${n.path}"`);
  const vf = valueFlags(program, values.options ?? {});
  const lines = [
    `# ${name} completion for bash (generated from the CLI). Load it with:`,
    `#   source <(${name} completion bash)`,
    `${fn}() {`,
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i skip=0',
    '  (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  # The command path so far: the words that name subcommands, skipping options and their values.',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w="${COMP_WORDS[i]}"',
    '    if (( skip )); then skip=0; continue; fi',
    '    case "$w" in',
    `      ${[...vf.keys()].join('|') || '--never--'}) skip=1; continue ;;`,
    '      -*) continue ;;',
    '    esac',
    `    case "\${path:+$path }$w" in`,
    `      ${known.join('|') || '""'}) path="\${path:+$path }$w" ;;`,
    '    esac',
    '  done',
    '  case "$prev" in',
    ...[...vf].map(([flag, words]) => `    ${flag}) ${wordsExpr(words, values.checks)} ;;`),
    '  esac',
    '  case "$path" in',
  ];
  for (const n of nodes) {
    const arg = values.args?.[n.path];
    const fileArg = arg?.includes('@files') ?? false;
    const argWords = arg && !fileArg ? (arg.includes('@checks') ? values.checks : arg) : [];
    const words = [...n.subcommands, ...argWords];
    const files = fileArg ? '; [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))' : '';
    lines.push(
      `    "${n.path}") if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "${n.flags.map(word).join(' ')}" -- "$cur")); else COMPREPLY=($(compgen -W "${words.map(word).join(' ')}" -- "$cur"))${files}; fi ;;`,
    );
  }
  lines.push('  esac', '}', `complete -o default -F ${fn} ${name}`, '');
  return lines.join('\n');
}

export function zshCompletion(program: Command, values: CompletionValues): string {
  return [
    `#compdef ${program.name()}`,
    `# ${program.name()} completion for zsh (generated from the CLI). Load it with:`,
    `#   source <(${program.name()} completion zsh)`,
    '# It runs the bash completion function through zsh\'s bashcompinit.',
    'autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }',
    'autoload -U +X bashcompinit && bashcompinit',
    bashCompletion(program, values).replace(/^# .*\n# .*\n/, ''),
  ].join('\n');
}
