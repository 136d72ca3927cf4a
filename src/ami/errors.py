"""The one exception type a user is meant to read: the CLI prints its message on one line."""


class AmiError(Exception):
    """A problem with the user's input or files, stated so that they can fix it."""


def check_rules(cfg, rules: list[tuple[str, bool, str]]) -> None:
    """Raise an AmiError for the first (option, holds, what it must be) rule that fails,
    naming the option as a flag and its value (dotted names reach nested configs)."""
    for name, ok, want in rules:
        if not ok:
            value = cfg
            for part in name.split("."):
                value = getattr(value, part)
            raise AmiError(f"--{name.replace('_', '-')} must be {want}, got {value}")
