"""One module per subcommand: parse, call the core, render. No logic of their own."""
