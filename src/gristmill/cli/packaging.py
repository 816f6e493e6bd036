"""``gristmill package``: a registered version as a directory that serves it alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gristmill.cli.console import console, err_console
from gristmill.cli.settings import settings_from

MODEL_HELP = (
    "The model: NAME (its @champion), NAME@ALIAS, NAME:VERSION or NAME/VERSION; list them "
    "with `gristmill models`."
)


def package(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help=MODEL_HELP)],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Directory to write (absent or empty, or --force)."),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace --out if it exists and is not empty.")
    ] = False,
    wheel: Annotated[
        list[Path] | None,
        typer.Option(
            help="A wheel to ship in the package's wheels/ (e.g. gristmill's own, when your "
            "package index does not have it); repeatable."
        ),
    ] = None,
) -> None:
    """Write a directory that serves one model version alone, with or without Docker.

    It holds the version's compiled servable and its manifest, a lock of every dependency
    pinned to the versions installed here (requirements.txt), an entry point (serve.py:
    gristmill's native API, the Open Inference Protocol v2 and MLflow's protocol, with no
    metadata store, registry or bus), a Dockerfile and a README saying how to run and score
    it. Every file is checked against its digest when the entry point starts.

    \b
        gristmill package penguins --out dist/penguins
        gristmill package penguins:3 --out dist/penguins-3 --force
        cd dist/penguins && python serve.py --port 8080
    """
    from gristmill.packaging.package import check_out, write_package
    from gristmill.runtime.wiring import open_stores

    check_out(out, force=force)  # before the stores open: a wrong --out fails at once
    with open_stores(settings_from(ctx)) as stores:
        written = write_package(stores, model, out, force=force, wheels=wheel or ())
    manifest = written.manifest
    console.print(
        f"packaged {manifest.ref} ({manifest.kind} servable {manifest.digest}) in {out}: "
        f"{len(written.files)} files, {_size(written.size)}",
        highlight=False,
    )
    for name, size in written.files.items():
        console.print(f"  {name}  {_size(size)}", highlight=False, style="dim")
    if written.unpinned:
        err_console.print(
            f"warning: not installed here, so not pinned: {', '.join(written.unpinned)}",
            style="yellow",
            highlight=False,
        )
    if written.local:
        err_console.print(
            f"warning: {manifest.ref} loads code of {', '.join(written.local)}, which no "
            "installed distribution provides, so the lock cannot pin it: install it beside "
            "the package (or add its wheel to wheels/)",
            style="yellow",
            highlight=False,
        )
    console.print(
        f"run it: cd {out} && python serve.py --port 8080   (or: docker build -t "
        f"{manifest.model.lower()}:{manifest.version} {out}); README.md has the curl to score",
        highlight=False,
    )


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Models")(package)
