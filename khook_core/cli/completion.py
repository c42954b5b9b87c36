"""``khook completion bash|zsh``: a completion script generated from the parser itself, so it
never lags behind the commands and options."""

from __future__ import annotations

import argparse
from typing import Any, Final

SHELLS: Final = ("bash", "zsh")
DIRECTORY_OPTIONS: Final = frozenset({"--config", "--state-dir"})
ZSH_PRELUDE: Final = """\
#compdef khook
# zsh: the bash completion through bashcompinit
autoload -U +X bashcompinit && bashcompinit
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print a completion script for bash or zsh on stdout.",
        epilog="examples:\n  source <(khook completion bash)         # in ~/.bashrc\n"
        "  source <(khook completion zsh)          # in ~/.zshrc",
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(run=cmd_completion)


def cmd_completion(args: argparse.Namespace, settings: Any) -> int:
    print(script(args.parser, args.shell), end="")
    return 0


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell``: the bash one, behind bashcompinit for zsh."""
    bash = _bash(parser)
    return ZSH_PRELUDE + bash if shell == "zsh" else bash


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _bash(parser: argparse.ArgumentParser) -> str:
    commands = _subparsers(parser)
    top = " ".join([*commands, "--help", "--version"])
    option_cases, value_cases, word_cases = [], [], []
    for name, sub in commands.items():
        flags: list[str] = []
        words: list[str] = []
        for action in sub._actions:
            if not action.option_strings:
                words += [str(c) for c in action.choices or ()]
                continue
            flags += [o for o in action.option_strings if o.startswith("--")]
            for option in action.option_strings:
                if action.choices:
                    value_cases.append(
                        f"        {name}:{option}) COMPREPLY=($(compgen -W "
                        f'"{" ".join(map(str, action.choices))}" -- "$cur")); return;;'
                    )
                elif option in DIRECTORY_OPTIONS:
                    value_cases.append(
                        f'        {name}:{option}) COMPREPLY=($(compgen -d -- "$cur")); return;;'
                    )
        option_cases.append(f'        {name}) opts="{" ".join(flags)}";;')
        if words:
            word_cases.append(f'        {name}) words="{" ".join(words)}";;')
    nl = "\n"
    return f"""\
# khook completion for bash: source <(khook completion bash)
_khook() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local opts="" words=""
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{top}" -- "$cur")); return
    fi
    case "${{COMP_WORDS[1]}}:$prev" in
{nl.join(value_cases)}
    esac
    case "${{COMP_WORDS[1]}}" in
{nl.join(option_cases)}
    esac
    case "${{COMP_WORDS[1]}}" in
{nl.join(word_cases) or "        '') ;;"}
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ -n $words ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}}
complete -o default -F _khook khook
"""
