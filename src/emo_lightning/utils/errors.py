"""The one error type for bad user input."""


class ConfigError(ValueError):
    """A bad input the user can fix; the message names the problem and the fix in one line."""


def config_error_in(err: BaseException) -> ConfigError | None:
    """The ConfigError behind `err`, if any (Hydra's instantiate wraps what constructors raise)."""
    while err is not None:
        if isinstance(err, ConfigError):
            return err
        err = err.__cause__ or err.__context__
    return None
