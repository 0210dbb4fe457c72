"""Interface: typer commands with rich output; thin wrappers over the layers below."""
