/**
 * `berth completion bash|zsh|fish`: shell completion generated from the commands themselves, so
 * it never falls behind them. Completes commands, their flags, the values of flags with a fixed
 * set (`-o table|json|yaml`), and Environment names (asked of kubectl, as kubectl's own
 * completion does, in the namespace given with -n).
 */
import type { Command } from 'commander'
import { UsageError } from '../shared/errors.ts'

type Spec = { name: string; description: string; flags: string[]; choices: Map<string, string[]>; takesEnv: boolean }

function specsOf(program: Command): Spec[] {
  return program.commands
    .filter((c) => c.name() !== 'help')
    .map((c) => {
      const options = c.options
      const choices = new Map<string, string[]>()
      for (const o of options) {
        for (const flag of [o.long, o.short]) if (flag && o.argChoices) choices.set(flag, [...o.argChoices])
      }
      return {
        name: c.name(),
        description: c.description(),
        flags: options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f))),
        choices,
        takesEnv: c.registeredArguments.some((a) => a.name() === 'env'),
      }
    })
}

const ENV_NAMES
  = 'kubectl get environments.berth.dev ${ns:+-n "$ns"} -o jsonpath=\'{.items[*].metadata.name}\' 2>/dev/null'

function bash(specs: readonly Spec[], name: string): string {
  const cases = specs.map((s) => {
    const choices = [...s.choices].map(([flag, values]) => `${flag}) COMPREPLY=($(compgen -W "${values.join(' ')}" -- "$cur")); return ;;`)
    return [
      `    ${s.name})`,
      `      opts="${s.flags.join(' ')}"; envs=${s.takesEnv ? 1 : 0}`,
      ...(choices.length ? [`      case "$prev" in ${choices.join(' ')} esac`] : []),
      '      ;;',
    ].join('\n')
  })
  return `# ${name} completion for bash: source <(${name} completion bash)
_berth() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="" ns="" opts="" envs=0 i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -n|--namespace) ns="\${COMP_WORDS[i+1]}" ;;
      -*) ;;
      *) [ -z "$cmd" ] && cmd="\${COMP_WORDS[i]}" ;;
    esac
  done
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "${specs.map((s) => s.name).join(' ')}" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases.join('\n')}
  esac
  if [[ "$cur" == -* ]] || [ "$envs" = 0 ]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(${ENV_NAMES})" -- "$cur"))
  fi
}
complete -F _berth berth
complete -F _berth kubectl-berth
`
}

function zsh(specs: readonly Spec[], name: string): string {
  // zsh runs the bash function through bashcompinit, as kubectl's and terraform's zsh scripts do.
  return `# ${name} completion for zsh: source <(${name} completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bash(specs, name).split('\n').slice(1).join('\n')}`
}

function fish(specs: readonly Spec[], name: string): string {
  const quote = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, '\\\'')}'`
  const lines = [`# ${name} completion for fish: ${name} completion fish | source`, 'complete -c berth -f']
  for (const s of specs) {
    lines.push(`complete -c berth -n __fish_use_subcommand -a ${s.name} -d ${quote(s.description.slice(0, 80))}`)
    const when = `'__fish_seen_subcommand_from ${s.name}'`
    for (const flag of s.flags) {
      const values = s.choices.get(flag)
      const kind = flag.startsWith('--') ? `-l ${flag.slice(2)}` : `-s ${flag.slice(1)}`
      lines.push(`complete -c berth -n ${when} ${kind}${values ? ` -r -a ${quote(values.join(' '))}` : ''}`)
    }
    if (s.takesEnv) {
      lines.push(`complete -c berth -n ${when} -a '(kubectl get environments.berth.dev -o jsonpath="{.items[*].metadata.name}" 2>/dev/null | string split " ")'`)
    }
  }
  return `${lines.join('\n')}\n`
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print shell completion for bash, zsh or fish (e.g. source <(berth completion bash))')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      const specs = specsOf(program)
      const name = program.name()
      const scripts: Record<string, () => string> = {
        bash: () => bash(specs, name),
        zsh: () => zsh(specs, name),
        fish: () => fish(specs, name),
      }
      const make = scripts[shell]
      if (!make) throw new UsageError('Usage', `completion ${shell}: use bash, zsh or fish`)
      process.stdout.write(make())
    })
}
