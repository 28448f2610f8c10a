"""One module per refrun verb; each has `main(g: Globals, verb: str, argv: list[str]) -> int`
and imports what only it needs inside, so that the CLI stays fast for the light verbs."""
