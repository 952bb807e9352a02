"""`sahay eval peers ...`: make the peers' venvs, show them, score a file of texts with any scorer."""

from __future__ import annotations

import functools
import inspect
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from eval.peers.envs import PeerNotInstalled, PeerSetupError, dir_size, peer_status, peers_dir, remove_peer, setup_peer
from eval.peers.registry import OURS, PEERS, UnknownScorer, open_scorer, peer_spec
from eval.peers.scorer import PeerError

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
peers_app = typer.Typer(
    help="Peer classifiers, each in its own virtual environment, scored side by side with ours.",
    no_args_is_help=True,
)

CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="where the peers' venvs live (default: $SAHAY_CACHE_DIR/peers)"),
]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _specs(names: list[str] | None):
    try:
        return [peer_spec(name) for name in names] if names else list(PEERS.values())
    except UnknownScorer as exc:
        raise _fail(str(exc)) from None


@peers_app.command("setup")
def setup_command(
    names: Annotated[list[str] | None, typer.Argument(help="peers to set up (default: all)")] = None,
    cache_dir: CacheDir = None,
    force: Annotated[bool, typer.Option("--force", help="re-create venvs that are already ready")] = False,
) -> None:
    """Create (or refresh) each peer's virtual environment and check that its adapter loads."""
    failed = []
    for spec in _specs(names):
        try:
            with console.status(f"{spec.name}: starting") as status:
                marker = setup_peer(spec, cache_dir, force=force, on_step=status.update)
        except PeerSetupError as exc:
            console.print(f"[red]{spec.name}: setup failed[/]\n{escape(str(exc))}", highlight=False, soft_wrap=True)
            failed.append(spec.name)
            continue
        size = dir_size(peers_dir(cache_dir) / spec.name) / 2**20
        console.print(
            f"{spec.name}: ready ({marker.get('setup_seconds', '?')} s at setup, {size:.0f} MiB)", highlight=False
        )
    if failed:
        raise typer.Exit(1)


@peers_app.command("list")
def list_command(cache_dir: CacheDir = None) -> None:
    """Every scorer: the peers with the state of their venvs, and our models."""
    table = Table(title=f"peers in {peers_dir(cache_dir)}")
    for column in ("scorer", "kind", "state", "output", "languages", "size", "setup s", "at_risk from"):
        table.add_column(column, overflow="fold")
    for spec in PEERS.values():
        status = peer_status(spec, cache_dir)
        size = f"{dir_size(status.path) / 2**20:.0f} MiB" if status.path.exists() else "-"
        seconds = str((status.marker or {}).get("setup_seconds", "-"))
        table.add_row(
            spec.requirement, "peer", status.state, spec.output, ",".join(spec.languages), size, seconds, spec.mapping
        )
    for model in OURS.values():
        state = "ready" if (model.path / "classifier.json").is_file() else f"missing ({model.path})"
        table.add_row(
            model.name, "ours", state, model.output, ",".join(model.languages), "-", "-", "P(ideation) + P(intent)"
        )
    Console(width=console.width).print(table)


@peers_app.command("remove")
def remove_command(
    names: Annotated[list[str], typer.Argument(help="peers whose venvs to delete")],
    cache_dir: CacheDir = None,
) -> None:
    """Delete peers' virtual environments."""
    for spec in _specs(names):
        console.print(f"{spec.name}: {'removed' if remove_peer(spec, cache_dir) else 'not set up'}", highlight=False)


@peers_app.command("score")
def score_command(
    name: Annotated[str, typer.Argument(help=f"a peer, one of ours ({', '.join(OURS)}) or a model directory")],
    texts: Annotated[Path, typer.Option("--texts", help=".txt (one text per line) or .jsonl (field 'text')")],
    cache_dir: CacheDir = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for scorers that use them")] = None,
) -> None:
    """Print one JSON line per text: {"index": i, "at_risk": score, ...what the scorer adds}; never the text."""
    from eval.bench import load_texts
    from eval.dataset import EvalInputError

    try:
        items = load_texts(texts)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        scorer = open_scorer(name, cache_dir=cache_dir, threads=threads)
    except (UnknownScorer, PeerNotInstalled, PeerError, EvalInputError) as exc:
        raise _fail(str(exc)) from None
    try:
        with scorer:
            for i, result in enumerate(scorer.score(items)):
                sys.stdout.write(json.dumps({"index": i, **result}) + "\n")
    except PeerError as exc:
        raise _fail(str(exc)) from None


def eval_group(command: Callable[..., None], help: str | None = None) -> typer.Typer:
    """A Typer group for `sahay eval`: `command` (all options, no arguments) runs when no subcommand follows,
    and `sahay eval peers ...` reaches `peers_app`. Wire it with `app.add_typer(eval_group(eval_command), name="eval")`.
    """
    hints = typing.get_type_hints(command, include_extras=True)  # string annotations -> Annotated[..., Option]
    params = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values()]
    if any(p.name == "ctx" for p in params):
        raise ValueError("the command must not take a ctx parameter of its own")

    @functools.wraps(command)
    def callback(ctx: typer.Context, **kwargs) -> None:
        if ctx.invoked_subcommand is None:
            command(**kwargs)

    ctx_param = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    callback.__signature__ = inspect.Signature([ctx_param, *params])
    callback.__annotations__ = {"ctx": typer.Context, **{p.name: p.annotation for p in params}}
    group = typer.Typer(help=help or inspect.getdoc(command), no_args_is_help=False)
    group.callback(invoke_without_command=True)(callback)
    group.add_typer(peers_app, name="peers")
    return group
