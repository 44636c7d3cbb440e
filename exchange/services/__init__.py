"""The broker's flows. Each service takes a Session and never commits: the caller's unit of
work (the request, or a CLI command) commits once the whole flow succeeded."""
