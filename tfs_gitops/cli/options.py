"""Options every command spells the same way, and the catalogue loading they share."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DEFAULT_CATALOGUE = "models.yaml"


class OutputFormat(click.Choice):
    """`-o/--output FORMAT`, with a hint for those who meant the old `-o DIR`."""

    def convert(self, value, param, ctx):
        if value not in self.choices and ("/" in str(value) or str(value) in ("overlays", ".")):
            self.fail(
                f"{value!r} is not an output format: -o/--output is the format ({', '.join(self.choices)}), "
                "as in kubectl; the output directory is --out-dir DIR",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


def output_option(*formats: str):
    formats = formats or ("text", "json")
    return click.option(
        "-o",
        "--output",
        "output_format",
        type=OutputFormat(formats),
        default=formats[0],
        show_default=True,
        help="Output format.",
    )


def catalogue_option(help_text: str = "The model catalogue."):
    return click.option(
        "-c",
        "--catalogue",
        "catalogue_path",
        default=DEFAULT_CATALOGUE,
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


def load_catalogue(path: Path, output_format: str):
    """The catalogue, its warnings printed to stderr; exit 1 listing every problem (2 when unreadable)."""
    from generator import loader
    from generator.problems import CatalogueError

    try:
        catalogue = loader.load(path)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror or exc}", param_hint="'-c'") from None
    except CatalogueError as exc:
        if output_format == "json":
            click.echo(json.dumps({"catalogue": str(path), "problems": exc.as_dicts()}, indent=2))
        else:
            for line in exc.lines():
                click.echo(line, err=True)
            click.echo(f"{path}: {len(exc.problems)} problem(s); nothing was generated.", err=True)
        sys.exit(1)
    for warning in catalogue.warnings:
        click.echo(warning.format(str(path)), err=True)
    return catalogue


def warnings_as_dicts(catalogue, path: Path) -> list[dict]:
    return [warning.as_dict(str(path)) for warning in catalogue.warnings]
