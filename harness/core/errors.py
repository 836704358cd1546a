"""User-facing errors: the CLI prints them as one line and exits with status 2."""


class HarnessError(Exception):
    """A problem with the user's input (config, file, name) that needs no traceback."""


class ConfigError(HarnessError):
    """A malformed config or input file; the message names the file and the field."""

    def __init__(self, source: str, field: str, problem: str):
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: field '{field}': {problem}")
