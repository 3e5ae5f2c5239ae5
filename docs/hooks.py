"""MkDocs hooks: the CLI reference and the Python API pages are generated at build time, from the command
line's own parser and from the public API's docstrings, so they cannot drift from the code."""

from __future__ import annotations

import inspect


def _cli_reference() -> str:
    from blocknas.orchestrator.cli import _parser

    parser = _parser()
    sections = [f"```text\n{parser.format_help()}```"]
    for action in parser._subparsers._group_actions:  # argparse keeps its subcommands here
        for name, sub in action.choices.items():
            sections.append(f"### `blocknas {name}`\n\n```text\n{sub.format_help()}```")
    return "\n\n".join(sections)


def _api_reference() -> str:
    import blocknas

    sections = []
    for name in blocknas.__all__:
        obj = getattr(blocknas, name)
        try:
            signature = f"{name}{inspect.signature(obj)}"
        except (TypeError, ValueError):
            signature = name
        kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else "object"
        doc = inspect.getdoc(obj) or ""
        sections.append(
            f"### `{name}`\n\n*{kind}* from `{obj.__module__}`\n\n```python\n{signature}\n```\n\n```text\n{doc}\n```"
            if doc
            else f"### `{name}`\n\n```python\n{signature}\n```"
        )
    return "\n\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!-- cli-reference -->" in markdown:
        markdown = markdown.replace("<!-- cli-reference -->", _cli_reference())
    if "<!-- python-api -->" in markdown:
        markdown = markdown.replace("<!-- python-api -->", _api_reference())
    return markdown
