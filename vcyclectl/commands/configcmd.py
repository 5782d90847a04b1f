"""`config check` and `config show`."""

from __future__ import annotations

import typer

from vcyclectl.commands.context import app_context, info
from vcyclectl.commands.formats import output_option

config_app = typer.Typer(help="Validate or print the configuration.", no_args_is_help=True)


@config_app.command("check")
def check(ctx: typer.Context) -> None:
    """Validate every file, key and user_data template; exit 2 with file:line: key on error.

    \b
    Examples:
      vcyclectl config check
      vcyclectl --config /etc/vcyclectl/vcyclectl.yaml.new config check
    """
    from vcyclectl.vm.userdata import check_all

    app = app_context(ctx)
    config = app.config()
    templates = check_all(config)
    machinetypes = sum(len(s.machinetypes) for s in config.spaces.values())
    info(app, f"ok: {len(config.spaces)} spaces, {machinetypes} machinetypes, {templates} "
              f"user_data templates, from {', '.join(config.files)}")


@config_app.command("show")
def show(
    ctx: typer.Context,
    output: str = output_option(("yaml", "json"), "yaml"),
) -> None:
    """The effective merged configuration, secrets redacted.

    \b
    Examples:
      vcyclectl config show
      vcyclectl config show -o json | jq '.spaces | keys'
    """
    import yaml

    from vcyclectl.config import display
    from vcyclectl.commands.output import write_json

    app = app_context(ctx)
    data = display(app.config())
    if output == "json":
        write_json(data)
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)


@config_app.command("schema")
def schema_command() -> None:
    """A JSON Schema of the configuration, for editors (yaml-language-server) and CI.

    \b
    Examples:
      vcyclectl config schema > /etc/vcyclectl/vcyclectl.schema.json
      # then, first line of vcyclectl.yaml:
      # yaml-language-server: $schema=vcyclectl.schema.json
    """
    import json

    from vcyclectl.config.reference import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))
