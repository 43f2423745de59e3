"""protein-loftr command line. Thin: each command parses its options into the library's config dataclasses and
calls one library function. Library errors (`data.errors.UserError`) become a message and exit code 2; other
exceptions exit 1 with a one-line message. `--debug` shows tracebacks.

    python cli.py --help
"""
from __future__ import annotations

import logging
import sys

import click
from rich.console import Console
from rich.logging import RichHandler

from data.errors import UserError

console = Console(stderr=True)
log = logging.getLogger("protein_loftr")


class _Cli(click.Group):
    """Turns exceptions into messages and exit codes, once, for every command."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
            if ctx.params.get("debug"):
                raise
            if isinstance(exc, (UserError, KeyError, FileNotFoundError, PermissionError)):
                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                console.print(f"[bold red]error:[/] {message}")
                sys.exit(2)
            console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}\n"
                          "(run again with --debug for the traceback, and please report it)")
            sys.exit(1)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def cli(debug: bool, verbose: bool) -> None:
    """Protein-LoFTR: distil ESM-2's inter-chain maps into a cheap CNN PPI student.

    \b
    Stage one (GPU box, once):  precompute  -> teacher cache (HDF5)
    Stage two (laptop or GPU):  train, evaluate, predict, screen
    Start with:                 python cli.py demo --out demo_out
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)], force=True)


# == stage one: precompute, cache ==========================================================================


# == stage two: train, evaluate, predict ===================================================================


# == evidence: synth, ablate ===============================================================================


# == evaluation controls: split, negatives =================================================================


# == structures: structure-cache, evaluate-maps ============================================================


# == screening: screen, screen-merge =======================================================================


# == newcomer path: demo ===================================================================================


def main() -> None:
    cli(prog_name="protein-loftr")


if __name__ == "__main__":
    main()
