"""The `sahay` command: composes each package's commands. No package imports this module."""

from __future__ import annotations

import typer

from data.commands import app as data_app
from eval.commands import bench_command, eval_command
from eval.peers.commands import eval_group
from model.commands import model_app, train_command
from serve.commands import serve_command
from serve.keys_commands import keys_app
from serve.queue_commands import queue_app
from serve.score_commands import score_command

app = typer.Typer(
    help="Sahay: self-harm-risk text classification for in-app support and moderation queues.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data_app, name="data")
app.add_typer(model_app, name="model")
app.command("train")(train_command)
app.command("serve")(serve_command)
app.command("bench")(bench_command)
app.add_typer(eval_group(eval_command), name="eval")
app.add_typer(keys_app, name="keys")
app.add_typer(queue_app, name="queue")
app.command("score")(score_command)


if __name__ == "__main__":
    app()
